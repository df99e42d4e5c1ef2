"""Training: the step lowers the loss, augmentations keep shapes, resume is exact."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.models import get_model
from deattack.training import augment, train


def _synthetic(num_train=192, num_test=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, num_train + num_test).astype(np.int32)
    # Class-dependent mean colour, so the task is learnable in a few steps.
    images = rng.normal(60 + 15 * labels[:, None, None, None], 20, (num_train + num_test, 32, 32, 3))
    images = np.clip(images, 0, 255).astype(np.uint8)
    return images[:num_train], labels[:num_train], images[num_train:], labels[num_train:]


def test_train_steps_lower_the_loss_on_a_fixed_batch():
    config = train.TrainConfig(model="lenet", epochs=1, batch_size=64, learning_rate=0.05,
                               augmentations=(), warmup_epochs=0.0)
    model = get_model("lenet")
    optimizer = train.make_optimizer(config, steps_per_epoch=20)
    state = train.init_state(config, model, optimizer)
    step = train.make_train_step(config, model, optimizer)
    images, labels, _, _ = _synthetic()
    images, labels = jnp.asarray(images), jnp.asarray(labels)
    batch = jnp.arange(64)
    losses = []
    for _ in range(8):
        state, metrics = step(state, images, labels, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < losses[0] - 0.1, losses


def test_augmentations_keep_shape_range_and_labels():
    rng = np.random.default_rng(1)
    images = jnp.asarray(rng.integers(0, 256, (8, 32, 32, 3)), jnp.float32)
    labels = jnp.arange(8)
    out = augment.compose(("crop", "flip"))(jax.random.key(0), images, labels)
    assert out.shape == images.shape and float(out.min()) >= 0 and float(out.max()) <= 255
    flipped = augment.random_flip(jax.random.key(3), images, labels)
    for original, result in zip(np.asarray(images), np.asarray(flipped)):
        assert np.array_equal(result, original) or np.array_equal(result, original[:, ::-1])
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment.compose(("crop", "cutmix"))


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    arrays = _synthetic()
    config = train.TrainConfig(model="lenet", epochs=2, batch_size=32, learning_rate=0.05,
                               checkpoint_every_steps=2, eval_batch_size=32)
    uninterrupted = train.train(config, tmp_path / "a", tmp_path / "a_export", arrays=arrays)

    class Killed(Exception):
        pass

    def kill_at_step_7(step, total, metrics):
        if step == 7:
            raise Killed

    with pytest.raises(Killed):
        train.train(config, tmp_path / "b", tmp_path / "b_export", arrays=arrays, on_step=kill_at_step_7)
    resumed = train.train(config, tmp_path / "b", tmp_path / "b_export", arrays=arrays)
    assert resumed["test_accuracy"] == uninterrupted["test_accuracy"]
    from deattack.victims.loading import load_victim

    a, b = load_victim(str(tmp_path / "a_export")), load_victim(str(tmp_path / "b_export"))
    for leaf_a, leaf_b in zip(jax.tree.leaves(a.variables), jax.tree.leaves(b.variables)):
        np.testing.assert_array_equal(np.asarray(leaf_a), np.asarray(leaf_b))


def test_resume_with_another_config_is_refused(tmp_path):
    arrays = _synthetic(num_train=64, num_test=32)
    config = train.TrainConfig(model="lenet", epochs=1, batch_size=32, eval_batch_size=32)
    train.train(config, tmp_path / "run", arrays=arrays)
    with pytest.raises(ValueError, match="another config"):
        train.train(train.TrainConfig(model="lenet", epochs=2, batch_size=32, eval_batch_size=32),
                    tmp_path / "run", arrays=arrays)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("learning_rate", -1.0)])
def test_bad_train_config(field, value):
    with pytest.raises(ValueError, match=field):
        train.TrainConfig(**{field: value})


def test_unknown_model_in_train_config():
    with pytest.raises(ValueError, match="unknown model"):
        train.TrainConfig(model="mobilenet")


def test_an_export_never_replaces_a_checkpoint_this_run_did_not_write(tmp_path):
    """A fresh run refuses an --out that holds a checkpoint (a shipped victim, another
    run's) before any step, leaving it as it was; overwrite=True replaces it; a resumed run
    re-exports its own checkpoint (the kill test above)."""
    import shutil

    from deattack import checkpoint
    from deattack.victims.loading import CHECKPOINT_DIR

    arrays = _synthetic(num_train=64, num_test=32)
    config = train.TrainConfig(model="lenet", epochs=1, batch_size=32, eval_batch_size=32)
    target = tmp_path / "lenet"
    for source, copy in zip(checkpoint.paths_for(CHECKPOINT_DIR / "lenet"), checkpoint.paths_for(target)):
        shutil.copy(source, copy)
    before = [path.read_bytes() for path in checkpoint.paths_for(target)]
    steps = []
    with pytest.raises(ValueError, match="already holds a checkpoint this run did not write.*--overwrite"):
        train.train(config, tmp_path / "run", target, arrays=arrays, on_step=lambda *a: steps.append(a))
    assert steps == [] and [path.read_bytes() for path in checkpoint.paths_for(target)] == before
    train.train(config, tmp_path / "run", target, arrays=arrays, overwrite=True)
    assert [path.read_bytes() for path in checkpoint.paths_for(target)] != before
