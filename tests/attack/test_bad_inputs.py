"""Bad settings and inputs fail up front with a ValueError naming the field; a victim that
returns NaN or Inf never yields a reported success."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from deattack.attack import AttackConfig, attack, validate_inputs
from deattack.victims.victim import Victim

from .red_dot import (
    FAULTY_NAN_GREY,
    NUM_CLASSES,
    TARGETED_CONFIG,
    TRUE_CLASS,
    WEAK_CLASS,
    WEAK_X,
    WEAK_Y,
    faulty_logits,
    grey_images,
    make_victim,
    nan_logits,
)


@pytest.mark.parametrize("overrides, field", [
    ({"pixels": 0}, "pixels"),
    ({"pixels": 1.0}, "pixels"),
    ({"population_size": 3}, "population_size"),  # rand/1 needs 4 members
    ({"mutation": "current-to-pbest/1", "population_size": 2}, "population_size"),
    ({"mutation": "rand/9"}, "mutation"),
    ({"crossover": "uniform"}, "crossover"),
    ({"adaptation": "lshade"}, "adaptation"),
    ({"mode": "sideways"}, "mode"),
    ({"fitness": "entropy"}, "fitness"),
    ({"targets": "some"}, "targets"),
    ({"init": "zeros"}, "init"),
    ({"coordinate_bounds": "wrap"}, "coordinate_bounds"),
    ({"colour_bounds": "wrap"}, "colour_bounds"),
    ({"confidence": 1.5}, "confidence"),
    ({"confidence": 1.0}, "confidence"),  # [0, 1)
    ({"confidence": -0.1}, "confidence"),
    ({"confidence": float("nan")}, "confidence"),
    ({"differential_weight": 0.0}, "differential_weight"),  # F in (0, 2]
    ({"differential_weight": 3.0}, "differential_weight"),
    ({"differential_weight": float("nan")}, "differential_weight"),
    ({"crossover_rate": 1.5}, "crossover_rate"),  # CR in [0, 1]
    ({"crossover_rate": -0.5}, "crossover_rate"),
    ({"max_generations": -1}, "max_generations"),
    ({"slots": 0}, "slots"),
    ({"chunk_generations": 0}, "chunk_generations"),
    ({"microbatch": -1}, "microbatch"),
], ids=repr)
def test_bad_config_raises(overrides, field):
    with pytest.raises(ValueError, match=field):
        AttackConfig(**overrides)


@pytest.mark.parametrize("overrides", [
    {"differential_weight": 2.0}, {"differential_weight": 1e-3}, {"crossover_rate": 0.0},
    {"crossover_rate": 1.0}, {"confidence": 0.0}, {"confidence": 0.99}, {"max_generations": 0},
    {"population_size": 4}, {"mutation": "current-to-pbest/1", "population_size": 3},
], ids=repr)
def test_boundary_configs_are_accepted(overrides):
    config = AttackConfig(**overrides)
    assert config.max_queries == config.population_size * (config.max_generations + 1)


GOOD_IMAGES = grey_images(2)
GOOD_LABELS = np.asarray([3, 3])


def _with(array, index, value, dtype=np.float32):
    array = np.array(array, dtype=dtype)
    array[index] = value
    return array


@pytest.mark.parametrize("images, labels, targets, field", [
    (np.zeros((2, 32, 32), np.uint8), GOOD_LABELS, None, "images"),
    (np.zeros((2, 32, 32, 4), np.uint8), GOOD_LABELS, None, "images"),
    (np.zeros((2, 32, 32, 1), np.uint8), GOOD_LABELS, None, "3 colour channels"),
    (np.zeros((2, 32, 32, 3), bool), GOOD_LABELS, None, "images"),
    (np.zeros((2, 32, 32, 3), np.complex64), GOOD_LABELS, None, "images"),
    (np.full((2, 32, 32, 3), "a"), GOOD_LABELS, None, "images"),
    (_with(GOOD_IMAGES, (0, 1, 2, 0), -1.0), GOOD_LABELS, None, "images"),
    (_with(GOOD_IMAGES, (1, 1, 2, 0), 255.5), GOOD_LABELS, None, "images"),
    (_with(GOOD_IMAGES, (1, 0, 0, 2), 300, np.int16), GOOD_LABELS, None, "images"),
    (_with(GOOD_IMAGES, (0, 5, 5, 1), np.nan), GOOD_LABELS, None, "images"),
    (_with(GOOD_IMAGES, (0, 5, 5, 1), np.inf), GOOD_LABELS, None, "images"),
    (GOOD_IMAGES, np.asarray([3, 10]), None, "labels"),
    (GOOD_IMAGES, np.asarray([-1, 3]), None, "labels"),
    (GOOD_IMAGES, np.asarray([3.0, 3.0]), None, "labels"),
    (GOOD_IMAGES, np.asarray([3, 3, 3]), None, "labels"),
    (GOOD_IMAGES, GOOD_LABELS, np.asarray([7, 3]), "target"),
    (GOOD_IMAGES, GOOD_LABELS, np.asarray([7, 10]), "targets"),
    (GOOD_IMAGES, GOOD_LABELS, np.asarray([7]), "targets"),
], ids=lambda value: f"{value.dtype}{list(value.shape)}" if isinstance(value, np.ndarray) else repr(value))
def test_bad_inputs_raise(images, labels, targets, field):
    with pytest.raises(ValueError, match=field):
        validate_inputs(images, labels, NUM_CLASSES, targets)


def test_bad_inputs_raise_before_any_attack_runs():
    """attack() on inputs that validate_inputs rejects; the wrong-shape case is below."""
    victim = make_victim()
    config = AttackConfig(mode="targeted", population_size=16, max_generations=1)
    for images, labels, targets, field in [
        (np.zeros((2, 32, 32, 3), bool), GOOD_LABELS, None, "images"),
        (_with(GOOD_IMAGES, (0, 5, 5, 1), np.nan), GOOD_LABELS, None, "images"),
        (_with(GOOD_IMAGES, (0, 1, 2, 0), -1.0), GOOD_LABELS, None, "images"),
        (GOOD_IMAGES, np.asarray([3, 10]), None, "labels"),
        (GOOD_IMAGES, GOOD_LABELS, np.asarray([7, 3]), "target"),
    ]:
        with pytest.raises(ValueError, match=field):
            attack(victim, images, labels, config, targets=targets)
    with pytest.raises(ValueError, match="image_indices"):
        attack(victim, GOOD_IMAGES, GOOD_LABELS, config, targets=np.asarray([7, 7]), image_indices=[0])


def linear_logits(variables, images):
    """A linear classifier on flattened [N, 32, 32, 3] images (fails on other shapes, as a
    real model does: lenet raises 'Incompatible shapes for broadcasting')."""
    return images.reshape(images.shape[0], -1) @ variables["weights"]


def test_wrong_image_shape_raises_before_the_victim_runs():
    victim = Victim(name="linear", apply_fn=linear_logits,
                    variables={"weights": jnp.zeros((32 * 32 * 3, NUM_CLASSES), jnp.float32)})
    with pytest.raises(ValueError, match="images"):
        attack(victim, np.zeros((2, 32, 32), np.uint8), GOOD_LABELS,
               AttackConfig(population_size=16, max_generations=1))


def test_one_channel_images_are_refused_before_the_victim_runs():
    """Issue 27 item 8: a [N, H, W, 1] batch used to pass and crash inside JAX."""
    calls = []

    def counting_logits(variables, images):
        calls.append(images.shape)
        return linear_logits(variables, images)

    victim = Victim(name="linear", apply_fn=counting_logits,
                    variables={"weights": jnp.zeros((32 * 32 * 3, NUM_CLASSES), jnp.float32)})
    with pytest.raises(ValueError, match=r"3 colour channels \(RGB\), got 1 .*np.repeat"):
        attack(victim, np.zeros((2, 32, 32, 1), np.uint8), GOOD_LABELS,
               AttackConfig(population_size=16, max_generations=1))
    assert calls == []


@pytest.mark.parametrize("targets", [-1, True, 2.0, "cat", None])
def test_bad_class_target_raises(targets):
    with pytest.raises(ValueError, match="targets"):
        AttackConfig(mode="targeted", targets=targets)


def test_class_target_beyond_the_victims_classes_raises(tmp_path):
    with pytest.raises(ValueError, match=r"targets=10 is not a class of this victim \(0..9\)"):
        attack(make_victim(), GOOD_IMAGES, GOOD_LABELS,
               AttackConfig(mode="targeted", targets=NUM_CLASSES, population_size=16, max_generations=1),
               out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before the results folder is made


def test_victim_with_nan_logits_everywhere():
    victim = make_victim(nan_logits, name="nan")
    results = attack(victim, grey_images(3), np.full(3, TRUE_CLASS),
                     AttackConfig(population_size=16, max_generations=2))
    assert len(results.records) == 3
    for record in results.records:
        assert record["status"] == "nonfinite_logits"
        assert record["success"] is False
        assert record["queries"] == 0 and record["pixels"] == []
    summary = results.summary
    assert summary["n_nonfinite"] == 3 and summary["n_success"] == 0 and summary["n_attacked"] == 0
    assert summary["success_rate"] == 0.0 and summary["queries_this_run"] == 0


@pytest.mark.allow_rank_promotion
def test_victim_with_non_finite_logits_on_perturbed_images():
    """faulty_logits (red_dot.py): image 0 (grey 100) gets NaN on every perturbed candidate;
    image 1 (grey 128) gets +inf on class 7 exactly where the attack would succeed; image 2
    has the weak pixel already red, so its clean logits are non-finite. Nothing may be
    reported as a success, and the attacked images spend the whole budget."""
    victim = make_victim(faulty_logits, name="faulty")
    config = dataclasses.replace(TARGETED_CONFIG, slots=2)
    images = grey_images(3)
    images[0] = FAULTY_NAN_GREY
    images[2, WEAK_Y, WEAK_X] = (255, 0, 0)
    clean_logits = np.asarray(victim.logits(images.astype(np.float32)))
    assert np.all(np.isfinite(clean_logits[:2])) and not np.all(np.isfinite(clean_logits[2]))
    results = attack(victim, images, np.full(3, TRUE_CLASS), config, targets=np.full(3, WEAK_CLASS))
    by_index = {r["image_index"]: r for r in results.records}
    assert sorted(by_index) == [0, 1, 2]
    assert by_index[2]["status"] == "nonfinite_logits" and by_index[2]["success"] is False
    # Image 0 never saw a finite candidate: recorded as the victim's fault, with its queries;
    # image 1 did (everywhere but the weak spot): an ordinary failure.
    for index, expected in ((0, "nonfinite_logits"), (1, "failed")):
        record = by_index[index]
        assert record["success"] is False and record["status"] == expected, record
        assert record["generations"] == config.max_generations
        assert record["queries"] == config.max_queries
        assert record["original_prediction"] == TRUE_CLASS
    # On image 1 the search does reach the weak spot: the fault, not the search, stops it.
    x, y, r, g, b = by_index[1]["pixels"][0]
    assert (x, y) == (WEAK_X, WEAK_Y) and r - g - b > 200
    assert results.summary["n_success"] == 0 and results.summary["n_nonfinite"] == 2
    assert results.summary["n_attacked"] == 1
    assert results.summary["queries_this_run"] == 2 * config.max_queries
