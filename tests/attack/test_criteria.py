"""Fitness and success of candidates, against hand-computed numbers."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.attack import criteria

LOGITS = [2.0, 1.0, 0.0, 3.0]  # argmax 3
_EXP = [math.exp(v) for v in LOGITS]
P = [e / sum(_EXP) for e in _EXP]  # ~ [0.2369, 0.0871, 0.0321, 0.6439]


@functools.partial(jax.jit, static_argnames=("mode", "fitness", "confidence"))
def evaluate(logits, labels, targets, *, mode, fitness, confidence=0.0):
    return criteria.evaluate(logits, labels, targets, mode=mode, fitness=fitness, confidence=confidence)


def _one(label, target, mode, fitness, confidence=0.0, logits=LOGITS):
    value, success = evaluate(jnp.asarray([logits], jnp.float32), jnp.asarray([label], jnp.int32),
                              jnp.asarray([target], jnp.int32), mode=mode, fitness=fitness,
                              confidence=confidence)
    assert value.shape == success.shape == (1,)
    assert value.dtype == jnp.float32 and success.dtype == jnp.bool_
    return float(value[0]), bool(success[0])


@pytest.mark.parametrize("label, target, mode, fitness, expected_value, expected_success", [
    # untargeted, probability: p(true class); success when top-1 != true class
    (0, -1, "untargeted", "probability", P[0], True),
    (3, -1, "untargeted", "probability", P[3], False),
    # untargeted, margin: logit(true) - max other logit
    (0, -1, "untargeted", "margin", 2.0 - 3.0, True),
    (3, -1, "untargeted", "margin", 3.0 - 2.0, False),
    (2, -1, "untargeted", "margin", 0.0 - 3.0, True),
    # targeted, probability: 1 - p(target); success when top-1 == target
    (0, 3, "targeted", "probability", 1.0 - P[3], True),
    (3, 1, "targeted", "probability", 1.0 - P[1], False),
    # targeted, margin: max non-target logit (the true class included) - logit(target)
    (0, 3, "targeted", "margin", 2.0 - 3.0, True),
    (3, 1, "targeted", "margin", 3.0 - 1.0, False),
    (1, 0, "targeted", "margin", 3.0 - 2.0, False),
])
def test_hand_computed(label, target, mode, fitness, expected_value, expected_success):
    value, success = _one(label, target, mode, fitness)
    assert value == pytest.approx(expected_value, abs=1e-6)
    assert success == expected_success


def test_hand_probabilities():
    assert P == pytest.approx([0.236883, 0.087144, 0.032059, 0.643914], abs=1e-6)


@pytest.mark.parametrize("mode, label, target", [("untargeted", 0, -1), ("targeted", 0, 3)])
@pytest.mark.parametrize("fitness", criteria.FITNESSES)
def test_confidence_threshold(mode, label, target, fitness):
    # The adversarial class is 3 with p = 0.6439.
    assert _one(label, target, mode, fitness, confidence=0.0)[1]
    assert _one(label, target, mode, fitness, confidence=0.64)[1]
    assert not _one(label, target, mode, fitness, confidence=0.65)[1]
    # The threshold decides success only; the fitness is unchanged.
    assert _one(label, target, mode, fitness, confidence=0.65)[0] == _one(label, target, mode, fitness)[0]


def test_untargeted_confidence_uses_the_strongest_wrong_class():
    logits = [0.0, 2.0, 1.9, 0.0]  # true class 2 is second; class 1 wins with p ~ 0.45
    strongest = float(np.exp(logits)[1] / np.sum(np.exp(logits)))
    assert _one(2, -1, "untargeted", "probability", confidence=strongest - 1e-3, logits=logits)[1]
    assert not _one(2, -1, "untargeted", "probability", confidence=strongest + 1e-3, logits=logits)[1]


@pytest.mark.parametrize("mode", criteria.MODES)
@pytest.mark.parametrize("fitness", criteria.FITNESSES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_logits_give_nan_fitness_and_no_success(mode, fitness, bad):
    # With the bad value on the target class, or elsewhere, the candidate never succeeds.
    for position in range(4):
        logits = [0.0, 0.0, 0.0, 9.0]
        logits[position] = bad
        value, success = _one(0, 3, mode, fitness, logits=logits)
        assert math.isnan(value)
        assert not success


def _numpy_evaluate(logits, labels, targets, mode, fitness, confidence):
    """Transcription of the criteria from the module docstring, in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
    predicted = logits.argmax(axis=-1)
    reference = labels if mode == "untargeted" else targets
    reference = np.broadcast_to(reference, predicted.shape)
    take = lambda array: np.take_along_axis(array, reference[..., None], -1)[..., 0]
    others = np.where(np.arange(logits.shape[-1]) == reference[..., None], -np.inf, logits)
    other_probabilities = np.where(np.arange(logits.shape[-1]) == reference[..., None], 0.0, probabilities)
    if mode == "untargeted":
        value = take(probabilities) if fitness == "probability" else take(logits) - others.max(-1)
        success = (predicted != reference) & (other_probabilities.max(-1) >= confidence)
    else:
        value = 1.0 - take(probabilities) if fitness == "probability" else others.max(-1) - take(logits)
        success = (predicted == reference) & (take(probabilities) >= confidence)
    return value, success


@pytest.mark.parametrize("mode", criteria.MODES)
@pytest.mark.parametrize("fitness", criteria.FITNESSES)
@pytest.mark.parametrize("confidence", [0.0, 0.3])
def test_matches_numpy_on_slots_by_population(mode, fitness, confidence):
    # The engine's layout: logits [S, P, C], labels and targets [S, 1].
    rng = np.random.default_rng(0)
    slots, population, classes = 3, 64, 10
    logits = rng.normal(0.0, 2.0, (slots, population, classes)).astype(np.float32)
    labels = rng.integers(0, classes, (slots, 1))
    targets = (labels + rng.integers(1, classes, (slots, 1))) % classes
    value, success = evaluate(jnp.asarray(logits), jnp.asarray(labels, jnp.int32),
                              jnp.asarray(targets, jnp.int32), mode=mode, fitness=fitness,
                              confidence=confidence)
    expected_value, expected_success = _numpy_evaluate(logits, labels, targets, mode, fitness, confidence)
    assert value.shape == success.shape == (slots, population)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(success, expected_success)
    assert 0 < expected_success.sum() < success.size  # both outcomes occur


def test_unknown_names_raise():
    logits, labels = jnp.zeros((1, 4)), jnp.zeros((1,), jnp.int32)
    with pytest.raises(ValueError, match="mode"):
        criteria.evaluate(logits, labels, labels, mode="sideways", fitness="margin", confidence=0.0)
    with pytest.raises(ValueError, match="fitness"):
        criteria.evaluate(logits, labels, labels, mode="untargeted", fitness="entropy", confidence=0.0)
