"""Property tests (hypothesis) of the attack.

- AttackConfig: any mix of valid and invalid field values either raises a ValueError
  that names a field it was given, or builds a config whose invariants hold (never a
  TypeError from deep inside, never a config that fails later).
- Over seeds, F, CR and images, on a red-dot victim whose logits turn NaN whenever a
  candidate pixel lands in the right quarter of the image (so untargeted, a careless
  argmax would call those candidates adversarial): every reported success re-verifies
  by an independent NumPy perturbation and NumPy forward pass, none comes from the NaN
  region, and every problem's queries are exactly P x (generations + 1).
"""

import dataclasses
import json
import math

import hypothesis
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from deattack.attack import AttackConfig, attack
from deattack.attack.config import _NUMERIC_FIELDS
from deattack.de import ADAPTATIONS, BOUNDS, CROSSOVERS, MUTATIONS
from deattack.de.mutation import MIN_POPULATION_SIZE
from tests.support import numpy_write_pixels

from .red_dot import BASE_CONFIG, NUM_CLASSES, TRUE_CLASS, WEAK_CLASS, make_victim, numpy_red_dot_logits, red_dot_logits

# --- AttackConfig ------------------------------------------------------------------

_any_bad = st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=1))
_bad_integer = st.one_of(st.integers(-2, 0), st.sampled_from([2**31, 2**32, 2**40]), st.floats(-1, 600),
                         st.sampled_from([math.nan, math.inf]), _any_bad)
_bad_number = st.one_of(st.floats(-0.5, 0.0), st.floats(0.99, 2.5), st.integers(-1, 3),
                        st.sampled_from([math.nan, math.inf, -math.inf]), _any_bad)
_bad_name = st.one_of(st.sampled_from(["", "bogus", "RAND/1"]), _any_bad)


def _mostly(valid, bad):
    """A valid value 9 times in 10, so that many examples build a config."""
    return st.integers(0, 9).flatmap(lambda draw: valid if draw else bad)


_VALID = {
    "pixels": st.integers(1, 5), "population_size": st.integers(1, 600), "max_generations": st.integers(0, 300),
    "slots": st.integers(1, 16), "chunk_generations": st.integers(1, 20), "microbatch": st.integers(0, 128),
    "devices": st.integers(0, 4), "seed": st.integers(0, 2**32 - 1), "confidence": st.floats(0.0, 0.99),
    "differential_weight": st.floats(0.01, 2.0), "crossover_rate": st.floats(0.0, 1.0),
    "neighbour_radius": st.one_of(st.just(0.0), st.floats(0.0, 255.0)),
}
FIELD_STRATEGIES = {
    **{field: _mostly(_VALID[field], _bad_integer if kind is int else _bad_number)
       for field, (kind, _) in _NUMERIC_FIELDS.items()},
    **{field: _mostly(st.sampled_from(sorted(known)), _bad_name) for field, known in [
        ("mode", ("untargeted", "targeted")), ("targets", ("all", "random")), ("fitness", ("probability", "margin")),
        ("init", ("paper", "uniform")), ("mutation", MUTATIONS), ("crossover", CROSSOVERS),
        ("adaptation", ADAPTATIONS), ("coordinate_bounds", BOUNDS), ("colour_bounds", BOUNDS)]},
    "refill": _mostly(st.booleans(), st.one_of(st.integers(0, 1), _any_bad)),
}


@hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
@hypothesis.given(st.fixed_dictionaries({}, optional=FIELD_STRATEGIES))
def test_config_is_valid_or_a_value_error_naming_a_given_field(fields):
    try:
        config = AttackConfig(**fields)
    except ValueError as error:
        assert any(name in str(error) for name in fields), (fields, str(error))
        return
    for field, (kind, least) in _NUMERIC_FIELDS.items():
        value = getattr(config, field)
        assert type(value) is kind and not (kind is int and value < least), (field, value)
    assert config.population_size >= MIN_POPULATION_SIZE[config.mutation]
    assert 0 < config.differential_weight <= 2 and 0 <= config.crossover_rate <= 1
    assert 0 <= config.confidence < 1 and 0 <= config.seed < 2**32 and 0 <= config.neighbour_radius <= 255
    assert config.max_queries == config.population_size * (config.max_generations + 1) < 2**31
    assert {config.mutation, config.crossover, config.adaptation} <= {*MUTATIONS, *CROSSOVERS, *ADAPTATIONS}
    assert type(config.refill) is bool
    assert hash(config) == hash(dataclasses.replace(config))  # a valid static argument of jit
    json.dumps(config.search_key())  # goes into config.json and store keys


# --- the attack --------------------------------------------------------------------

NAN_FROM_COLUMN = 24  # candidates with a pixel in columns 24..31 get NaN logits


def nan_edge_logits(variables, images):
    """red_dot_logits, but NaN where any pixel in columns >= NAN_FROM_COLUMN differs from
    the top-left pixel (on a uniform image: where a candidate pixel landed there)."""
    images = jnp.asarray(images, jnp.float32)
    edge = images[:, :, NAN_FROM_COLUMN:, :]
    changed = jnp.any(edge != images[:, :1, :1, :], axis=(1, 2, 3))
    return jnp.where(changed[:, None], jnp.nan, red_dot_logits(variables, images))


def numpy_nan_edge_logits(images: np.ndarray) -> np.ndarray:
    """Independent NumPy (float64) transcription of nan_edge_logits."""
    images = np.asarray(images, np.float64)
    changed = np.any(images[:, :, NAN_FROM_COLUMN:, :] != images[:, :1, :1, :], axis=(1, 2, 3))
    logits = numpy_red_dot_logits(images)
    logits[changed] = np.nan
    return logits


VICTIM = make_victim(nan_edge_logits, name="red-dot-nan-edge")
CONFIG = BASE_CONFIG  # P = 50, 40 generations, 4 slots: one compilation for every example
NUM_IMAGES = CONFIG.slots


def _attack(seed, weight, rate, greys):
    images = np.stack([np.full((32, 32, 3), grey, np.uint8) for grey in greys])
    config = dataclasses.replace(CONFIG, seed=seed, differential_weight=weight, crossover_rate=rate)
    return images, attack(VICTIM, images, np.full(len(greys), TRUE_CLASS), config)


def _check(images, results):
    config = results.config
    for record in results.records:
        assert record["queries"] == config.population_size * (record["generations"] + 1)
        assert record["generations"] <= config.max_generations
        if not record["success"]:
            assert record["status"] == "failed" and record["queries"] == config.max_queries
            continue
        assert record["status"] == "success"
        clean = images[record["image_index"]]
        perturbed = numpy_write_pixels(clean, record["pixels"])
        assert np.count_nonzero(np.any(perturbed != clean, axis=-1)) <= config.pixels
        logits = numpy_nan_edge_logits(perturbed[None])[0]
        assert np.all(np.isfinite(logits)), record
        assert int(np.argmax(logits)) == record["adversarial_prediction"] == WEAK_CLASS != TRUE_CLASS
        assert all(x < NAN_FROM_COLUMN for x, *_ in record["pixels"])
    assert results.summary["queries_this_run"] == sum(r["queries"] for r in results.records)


@pytest.mark.allow_rank_promotion
@hypothesis.settings(max_examples=12, deadline=None, derandomize=True,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(
    seed=st.integers(0, 2**32 - 1),
    weight=st.floats(0.05, 2.0),
    rate=st.floats(0.0, 1.0),
    greys=st.lists(st.integers(0, 255), min_size=NUM_IMAGES, max_size=NUM_IMAGES),
)
def test_every_success_reverifies_and_queries_are_exact(seed, weight, rate, greys):
    _check(*_attack(seed, weight, rate, greys))


@pytest.mark.allow_rank_promotion
def test_the_property_run_finds_successes_past_the_nan_trap():
    """Not vacuous: the default setting succeeds on every image, and the NaN region is a
    trap (a candidate there has NaN logits whose argmax is not the true class)."""
    images, results = _attack(0, 0.5, 0.9, [128, 0, 255, 77])
    _check(images, results)
    assert all(results.success), results.records
    trapped = numpy_write_pixels(images[0], [[30, 5, 200, 10, 10]])[None].astype(np.float32)
    logits = np.asarray(nan_edge_logits(VICTIM.variables, trapped))
    assert logits.shape == (1, NUM_CLASSES) and np.isnan(logits).all()
    assert int(np.argmax(logits)) != TRUE_CLASS
