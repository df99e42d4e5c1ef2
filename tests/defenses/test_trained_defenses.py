"""Training-time defenses: the DE adversarial-training augmentation changes at most k
pixels and finds a known weakness of the model it is given, it runs inside the jitted
train step, and a defended checkpoint loads by name through the victim registry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deattack.training import augment, train
from deattack.victims import loading
from tests.attack import red_dot


def test_de_attack_changes_at_most_k_pixels_and_finds_the_known_weakness():
    # 8 grey images of class 3; half are attacked with 2 pixels against the red-dot victim,
    # whose only weakness is one red pixel at (x 12, y 20).
    augment_fn = augment.compose(
        ("de_attack:fraction=0.5,pixels=2,popsize=40,generations=30,mutation=current-to-pbest/1",))
    variables = {"weights": jnp.asarray(red_dot.location_weights())}
    images = jnp.asarray(red_dot.grey_images(8), jnp.float32)
    labels = jnp.full((8,), red_dot.TRUE_CLASS, jnp.int32)
    step = jax.jit(lambda key, x, y, v: augment_fn(key, x, y, (red_dot.red_dot_logits, v)))
    out = np.asarray(step(jax.random.key(0), images, labels, variables))
    assert out.shape == images.shape and out.dtype == np.float32
    changed = np.any(out != np.asarray(images), axis=-1).sum(axis=(1, 2))
    assert np.all(changed <= 2) and int((changed > 0).sum()) <= 4, changed
    predictions = np.argmax(red_dot.numpy_red_dot_logits(out), -1)
    fooled = predictions == red_dot.WEAK_CLASS
    assert int(fooled.sum()) >= 3, (changed, predictions)  # the search found the weak pixel
    assert np.all(out[fooled, red_dot.WEAK_Y, red_dot.WEAK_X, 0] - out[fooled, red_dot.WEAK_Y, red_dot.WEAK_X, 1:]
                  .sum(-1) >= red_dot.MIN_REDNESS)
    assert np.all(changed[~fooled] <= 2)


def _synthetic(num_train=64, num_test=32):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, num_train + num_test).astype(np.int32)
    images = np.clip(rng.normal(60 + 15 * labels[:, None, None, None], 20, (len(labels), 32, 32, 3)), 0, 255)
    images = images.astype(np.uint8)
    return images[:num_train], labels[:num_train], images[num_train:], labels[num_train:]


def test_defended_checkpoint_trains_with_both_defenses_and_loads_by_name(tmp_path, monkeypatch):
    specs = ("crop", "dead_pixels:k=1-2,p=1,values=mixed", "de_attack:fraction=0.25,generations=1,popsize=4")
    config = train.TrainConfig(model="lenet", epochs=1, batch_size=32, augmentations=specs, eval_batch_size=32)
    name = "lenet_" + augment.defense_tag(config.augmentations)
    assert name == "lenet_deadpixel_advde"
    with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix Python floats and int32
        metadata = train.train(config, tmp_path / "run", tmp_path / name, arrays=_synthetic())
    assert metadata["epochs_done"] == 1 and np.isfinite(metadata["test_accuracy"])

    monkeypatch.setattr(loading, "CHECKPOINT_DIR", tmp_path)
    loaded = loading.load_victim(name)
    assert loaded.name == "lenet"
    assert loaded.metadata["config"]["augmentations"] == list(config.augmentations)
    assert [a["name"] for a in loaded.metadata["augmentations"]] == ["crop", "dead_pixels", "de_attack"]
    assert loaded.metadata["augmentations"][1]["values"] == "mixed"

    wrapped = loading.load_victim(f"median3+{name}")
    assert wrapped.name == f"median3+{name}" and wrapped.metadata["defense"] == "median3"
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    from deattack.filters import median3

    np.testing.assert_allclose(np.asarray(wrapped.logits(jnp.asarray(images))),
                               np.asarray(loaded.logits(median3(jnp.asarray(images)))), rtol=1e-5, atol=1e-5)
