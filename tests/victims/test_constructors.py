"""Victims from anything (issue 28): `Victim.from_fn`, `from_flax`, `from_callback`, their
declared input domain, and victims that are not hashable or not victims at all.

The weakness victim here takes [0, 1] images of 24 x 40 (not CIFAR's 32 x 32): class 0
always has logit 5; class 1 gets 10 x the strongest "blueness" b - r - g of any pixel,
weighted by a location weight that is 1 only at column WEAK_X, row WEAK_Y (a wide
Gaussian gives the search a slope, a narrow one makes that pixel the only one that
crosses: blueness x weight > 0.5). So a blue pixel there, and nowhere else, fools it.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.attack import AttackConfig, attack
from deattack.victims.victim import Victim, num_classes, predict
from tests.support import numpy_write_pixels

HEIGHT, WIDTH = 24, 40
WEAK_X, WEAK_Y = 33, 5
CONFIG = AttackConfig(pixels=1, population_size=40, max_generations=30, init="corners", slots=2, seed=3)


def _weights(dtype=np.float32) -> np.ndarray:
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH]
    squared = (columns - WEAK_X) ** 2 + (rows - WEAK_Y) ** 2
    # One pixel away: 0.45 x 0.99 + 0.55 x 0.04 < 0.5, so even pure blue there does not cross.
    return (0.45 * np.exp(-squared / (2 * 6.0**2)) + 0.55 * np.exp(-squared / (2 * 0.4**2))).astype(dtype)


def blue_logits(images01):
    """JAX: [N, 24, 40, 3] in [0, 1] -> [N, 2]."""
    blueness = jnp.clip(images01[..., 2] - images01[..., 0] - images01[..., 1], 0.0, 1.0)
    score = jnp.max(blueness * jnp.asarray(_weights())[None], axis=(1, 2))
    return jnp.stack([jnp.full_like(score, 5.0), 10.0 * score], axis=-1)


def numpy_blue_logits(images01: np.ndarray) -> np.ndarray:
    """The same in NumPy float64: the test's independent reference."""
    images01 = np.asarray(images01, np.float64)
    blueness = np.clip(images01[..., 2] - images01[..., 0] - images01[..., 1], 0.0, 1.0)
    score = np.max(blueness * _weights(np.float64)[None], axis=(1, 2))
    return np.stack([np.full_like(score, 5.0), 10.0 * score], axis=-1)


def _images(count: int = 3) -> np.ndarray:
    """Grey-ish images in deattack's [0, 255] domain, each a little different."""
    return np.stack([np.full((HEIGHT, WIDTH, 3), 100 + 20 * i, np.uint8) for i in range(count)])


def _check_records(results, images):
    assert len(results.records) == len(images)
    for record in results.records:
        assert record["success"], record
        (x, y, *colour), = record["pixels"]
        assert (x, y) == (WEAK_X, WEAK_Y)
        adversarial = numpy_write_pixels(images[record["image_index"]], record["pixels"]) / 255.0
        assert np.argmax(numpy_blue_logits(adversarial[None])[0]) == record["adversarial_prediction"] == 1


def test_from_fn_in_zero_one_at_another_size_is_found_and_reverifies():
    victim = Victim.from_fn(blue_logits, name="blue", input_range=(0, 1))
    images = _images()
    results = attack(victim, images, np.zeros(len(images), np.int64), CONFIG)
    _check_records(results, images)
    assert victim.metadata["input_range"] == [0.0, 1.0]


def test_from_fn_scales_and_normalises_onto_the_declared_domain():
    seen = {}

    def fn(images):
        seen["images"] = images
        return jnp.zeros((images.shape[0], 2))

    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    victim = Victim.from_fn(fn, input_range=(-1, 1), mean=mean, std=std)
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3)).astype(np.float32)
    victim.logits(jnp.asarray(images))
    expected = ((-1.0 + images / 255.0 * 2.0) - np.asarray(mean)) / np.asarray(std)
    np.testing.assert_allclose(np.asarray(seen["images"]), expected, rtol=1e-5, atol=1e-5)


class SmallCNN(nn.Module):
    @nn.compact
    def __call__(self, images, train: bool = False):
        del train
        x = nn.Conv(4, (3, 3))(images / 255.0)
        x = nn.relu(x).mean(axis=(1, 2))
        return nn.Dense(3)(x)


def test_from_flax_gives_the_modules_logits_and_keeps_it_for_incremental():
    module = SmallCNN()
    variables = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    victim = Victim.from_flax(module, variables, name="small", apply_kwargs={"train": False})
    images = np.random.default_rng(1).uniform(0, 255, (4, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(predict(victim, images, batch_size=4),
                               np.asarray(module.apply(variables, images)), rtol=1e-6)
    assert victim.module is module and victim.name == "small"
    assert num_classes(victim, (28, 28, 1)) == 3
    scaled = Victim.from_flax(module, variables, input_range=(0, 1))
    assert scaled.module is None  # its apply is not the module's own: nothing to cut


def test_from_flax_nnx_module():
    from flax import nnx

    class Linear(nnx.Module):
        def __init__(self, rngs):
            self.dense = nnx.Linear(6 * 5 * 3, 4, rngs=rngs)

        def __call__(self, images):
            return self.dense(images.reshape(images.shape[0], -1))

    model = Linear(nnx.Rngs(0))
    victim = Victim.from_flax(model, None, name="nnx")
    images = np.random.default_rng(2).uniform(0, 255, (3, 6, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(predict(victim, images, batch_size=3), np.asarray(model(jnp.asarray(images))),
                               rtol=1e-5, atol=1e-5)


def test_callback_victim_gives_the_jax_victims_records_and_an_exact_ledger():
    """The same weakness through a NumPy black box: identical successes and pixels for the
    same seed, fitness equal to float tolerance; the ledger counts exactly the images sent:
    the clean predictions, every query the records charge, and the final judgements."""
    images = _images()
    labels = np.zeros(len(images), np.int64)
    jax_results = attack(Victim.from_fn(blue_logits, input_range=(0, 1)), images, labels, CONFIG)
    victim = Victim.from_callback(lambda batch: numpy_blue_logits(batch).astype(np.float32), 2,
                                  name="service", input_range=(0, 1))
    results = attack(victim, images, labels, CONFIG)
    _check_records(results, images)
    for ours, theirs in zip(results.records, jax_results.records):
        assert (ours["success"], ours["pixels"], ours["queries"]) == (theirs["success"], theirs["pixels"],
                                                                      theirs["queries"])
        np.testing.assert_allclose(ours["adversarial_confidence"], theirs["adversarial_confidence"], rtol=1e-5)
    queries = sum(r["queries"] for r in results.records)
    calls = victim.apply_fn.ledger.calls
    # clean predictions (one call) + the search's queries + at least one final judgement a success
    assert calls[0] == len(images)
    assert sum(calls) >= len(images) + queries + len(images)
    assert sum(calls) <= len(images) + queries + 2 * len(images)


def test_callback_that_returns_the_wrong_shape_is_a_clear_error():
    victim = Victim.from_callback(lambda batch: np.zeros((len(batch), 3), np.float32), 2)
    with pytest.raises(Exception, match=r"scores_fn returned shape \(2, 3\) for 2 images; expected \(2, 2\)"):
        predict(victim, np.zeros((2, 4, 4, 3), np.float32), batch_size=2)


@dataclasses.dataclass(frozen=True)
class FrozenLinear:
    """An apply function holding its weights as a NumPy array: not hashable."""

    weights: np.ndarray

    def __call__(self, variables, images):
        return images.reshape(images.shape[0], -1) @ self.weights


def test_an_unhashable_apply_function_works():
    """It used to fail with a bare TypeError deep inside jit."""
    victim = Victim("frozen", FrozenLinear(np.ones((4 * 4 * 3, 2), np.float32)), {})
    hash(victim.apply_fn)
    logits = predict(victim, np.ones((2, 4, 4, 3), np.float32), batch_size=2)
    np.testing.assert_allclose(logits, np.full((2, 2), 48.0))


@pytest.mark.parametrize("bad, message", [
    (lambda images: images, "a function is not a victim: wrap it with deattack.Victim.from_fn"),
    (42, "victim must be a deattack.Victim"),
])
def test_a_function_passed_as_a_victim_is_a_clear_error(bad, message):
    with pytest.raises(TypeError, match=message):
        attack(bad, _images(1), np.zeros(1, np.int64), CONFIG)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_range": (1, 0)}, "low < high"), ({"input_range": (0, 1, 2)}, "input_range must be"),
    ({"std": (0.0, 1.0, 1.0)}, "std must be > 0"),
])
def test_bad_domain_declarations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Victim.from_fn(blue_logits, **kwargs)


def test_images_that_look_like_zero_one_are_refused():
    """deattack's images are [0, 255]; a [0, 1] batch would make every corner colour a huge
    step (sparse-rs#3: attacks silently weak on normalised inputs)."""
    victim = Victim.from_fn(blue_logits, input_range=(0, 1))
    images = _images(2).astype(np.float32) / 255.0
    with pytest.raises(ValueError, match=r"images look like \[0, 1\].*multiply by 255"):
        attack(victim, images, np.zeros(2, np.int64), CONFIG)


def test_judgements_run_at_full_float32_precision():
    """Issue 30: every clean prediction and final verdict traces under matmul precision
    "highest" (on GPUs the default lets float32 convolutions use TF32); the search's own
    scoring is free to run at the backend's default."""
    seen = []

    def fn(images):
        seen.append(jax.config.jax_default_matmul_precision)
        return jnp.zeros((images.shape[0], 2)) + images[:, 0, 0, :2]

    victim = Victim.from_fn(fn, name="precision-probe")
    predict(victim, np.zeros((3, 4, 4, 3), np.float32), batch_size=3)
    assert seen == ["highest"]
    results = attack(victim, np.full((2, 4, 4, 3), 7, np.uint8), np.zeros(2, np.int64),
                     AttackConfig(population_size=8, max_generations=1, slots=2))
    assert len(results.records) == 2
    assert "highest" in seen[1:] and None in seen[1:]  # verdicts at highest, the search at the default
