"""Operators against their textbook formulas and invariants."""

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from deattack import de
from deattack.de import adaptation, bounds, crossover, mutation

P, D = 12, 4


def _population(seed=0):
    rng = np.random.default_rng(seed)
    population = rng.uniform(-1, 1, (P, D)).astype(np.float32)
    fitness = rng.uniform(0, 10, (P,)).astype(np.float32)
    return population, fitness


# --- mutation -------------------------------------------------------------------

def _best(x, f):
    return np.broadcast_to(x[np.argmin(f)], x.shape)


# name -> (number of distinct donors, NumPy formula of x, f, F [P, 1], r [P, k]).
REFERENCES = {
    "rand/1": (3, lambda x, f, F, r: x[r[:, 0]] + F * (x[r[:, 1]] - x[r[:, 2]])),
    "rand/2": (5, lambda x, f, F, r: x[r[:, 0]] + F * (x[r[:, 1]] - x[r[:, 2]])
               + F * (x[r[:, 3]] - x[r[:, 4]])),
    "best/1": (2, lambda x, f, F, r: _best(x, f) + F * (x[r[:, 0]] - x[r[:, 1]])),
    "best/2": (4, lambda x, f, F, r: _best(x, f) + F * (x[r[:, 0]] - x[r[:, 1]])
               + F * (x[r[:, 2]] - x[r[:, 3]])),
    "current-to-best/1": (2, lambda x, f, F, r: x + F * (_best(x, f) - x)
                          + F * (x[r[:, 0]] - x[r[:, 1]])),
}


def _call(name, key, population, fitness, weight, params, archive, archive_size):
    # The textbook operators ignore the search space (box and dimension kinds).
    space = de.SearchSpace(lower=-jnp.ones(D), upper=jnp.ones(D),
                           integer=jnp.zeros(D, bool), extreme=jnp.zeros(D, bool))
    return np.asarray(mutation.MUTATIONS[name](
        key, jnp.asarray(population), jnp.asarray(fitness), weight, params,
        jnp.asarray(archive), jnp.asarray(archive_size, jnp.int32), space))


# Tested in test_structured_operators.py against their own formulas.
STRUCTURED = {"rand/1-snap", "rand/1-snap-local", "random"}


def test_every_mutation_has_a_reference_and_minimum():
    assert set(REFERENCES) | {"current-to-pbest/1"} | STRUCTURED == set(mutation.MUTATIONS)
    assert set(mutation.MIN_POPULATION_SIZE) == set(mutation.MUTATIONS)


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("per_member_weight", [False, True])
def test_mutation_matches_textbook_formula(name, per_member_weight):
    population, fitness = _population()
    key = jax.random.key(3)
    weight = (np.linspace(0.2, 1.5, P).astype(np.float32) if per_member_weight
              else np.float32(0.7))
    mutants = _call(name, key, population, fitness, jnp.asarray(weight),
                    de.DEParams(), np.zeros((0, D), np.float32), 0)
    count, formula = REFERENCES[name]
    donors = np.asarray(mutation.draw_distinct_indices(key, P, count))
    expected = formula(population, fitness,
                       np.broadcast_to(weight, (P,))[:, None], donors)
    np.testing.assert_allclose(mutants, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("archive_size", [0, 5, P])
def test_current_to_pbest_matches_jade_formula(archive_size):
    population, fitness = _population(1)
    archive = np.random.default_rng(2).uniform(-1, 1, (P, D)).astype(np.float32)
    params = de.DEParams(pbest_fraction=0.25)
    key = jax.random.key(4)
    mutants = _call("current-to-pbest/1", key, population, fitness,
                    jnp.float32(0.5), params, archive, archive_size)
    pbest, r1, r2 = (np.asarray(i) for i in mutation.current_to_pbest_indices(
        key, jnp.asarray(fitness), 0.25, jnp.asarray(archive_size, jnp.int32)))
    members = np.arange(P)
    top = np.argsort(fitness)[:3]  # round(0.25 * 12) = 3 best
    assert np.isin(pbest, top).all()
    assert (r1 != members).all() and (r2 != members).all() and (r2 != r1).all()
    assert (r2 < P + archive_size).all() and (r1 < P).all()
    union = np.concatenate([population, archive])
    expected = (population + 0.5 * (population[pbest] - population)
                + 0.5 * (population[r1] - union[r2]))
    np.testing.assert_allclose(mutants, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("count", [1, 3, 5])
def test_distinct_indices_are_distinct_and_uniform(count):
    size = 8
    keys = jax.random.split(jax.random.key(0), 2000)
    draws = np.asarray(jax.vmap(
        lambda k: mutation.draw_distinct_indices(k, size, count))(keys))
    assert draws.shape == (2000, size, count)
    members = np.arange(size)[None, :, None]
    assert (draws != members).all()
    assert ((draws >= 0) & (draws < size)).all()
    for a in range(count):
        for b in range(a + 1, count):
            assert (draws[..., a] != draws[..., b]).all()
    # Each slot is uniform over the P - 1 other members: frequency 1/7 each,
    # 2000 draws per (member, slot), so a 5 sigma band is about +-0.04.
    for member in range(size):
        counts = np.bincount(draws[:, member, :].ravel(), minlength=size)
        frequency = np.delete(counts, member) / (2000 * count)
        np.testing.assert_allclose(frequency, 1 / (size - 1), atol=0.04)


# --- crossover ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(crossover.CROSSOVERS))
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9, 1.0])
def test_crossover_takes_each_gene_from_target_or_mutant(name, rate):
    targets = jnp.zeros((50, 6))
    mutants = jnp.ones((50, 6))
    trials = np.asarray(crossover.CROSSOVERS[name](
        jax.random.key(1), targets, mutants, jnp.float32(rate)))
    assert np.isin(trials, [0.0, 1.0]).all()
    assert (trials.sum(axis=1) >= 1).all()  # at least one gene from the mutant
    if name == "none":
        assert (trials == 1).all()


def test_exponential_mutant_genes_form_one_circular_run():
    num_dims = 7
    trials = np.asarray(crossover.exponential(
        jax.random.key(2), jnp.zeros((500, num_dims)), jnp.ones((500, num_dims)),
        jnp.float32(0.6)))
    for row in trials:
        # A circular run has exactly one 0 -> 1 step around the circle,
        # unless it covers every gene.
        rises = np.sum((np.roll(row, 1) == 0) & (row == 1))
        assert rises == 1 or row.all()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("name", ["bin", "exp"])
def test_crossover_mutant_fraction_matches_formula(name, rate):
    num_dims, rows = 6, 20000
    trials = np.asarray(crossover.CROSSOVERS[name](
        jax.random.key(5), jnp.zeros((rows, num_dims)), jnp.ones((rows, num_dims)),
        jnp.float32(rate)))
    if name == "bin":
        # Gene j_rand always, each of the other D - 1 with probability CR.
        expected = (1 + rate * (num_dims - 1)) / num_dims
    else:
        # E[L] = sum_{l=1..D} P(L >= l) = sum CR^(l-1) = (1 - CR^D) / (1 - CR).
        expected = (1 - rate**num_dims) / (1 - rate) / num_dims
    # Standard error of the mean fraction is below 0.5 / sqrt(rows) = 0.0035.
    assert abs(trials.mean() - expected) < 0.015


def test_crossover_per_member_rate():
    rate = jnp.concatenate([jnp.zeros(100), jnp.ones(100)])
    trials = np.asarray(crossover.binomial(
        jax.random.key(0), jnp.zeros((200, 5)), jnp.ones((200, 5)), rate))
    assert (trials[:100].sum(axis=1) == 1).all()
    assert (trials[100:] == 1).all()


# --- bounds ---------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(bounds.BOUNDS))
@hypothesis.settings(max_examples=30, deadline=None)
# XLA:CPU flushes subnormals to zero, so they are left out of the inputs.
@hypothesis.given(
    trials=hnp.arrays(np.float32, (5, 3), elements=st.floats(
        -1e6, 1e6, width=32, allow_subnormal=False)),
    lower=hnp.arrays(np.float32, (3,), elements=st.floats(
        -10, 10, width=32, allow_subnormal=False)),
    width=hnp.arrays(np.float32, (3,), elements=st.floats(
        0, 10, width=32, allow_subnormal=False)),
)
def test_bounds_output_inside_box(name, trials, lower, width):
    upper = lower + width
    out = np.asarray(bounds.BOUNDS[name](
        jax.random.key(0), jnp.asarray(trials), jnp.asarray(lower),
        jnp.asarray(upper)))
    assert ((out >= lower) & (out <= upper)).all()
    inside = (trials >= lower) & (trials <= upper)
    np.testing.assert_array_equal(out[inside], trials[inside])


def test_reflect_on_hand_values():
    trials = jnp.array([[-0.25, 0.5, 1.25, 7.0]])
    lower, upper = jnp.zeros(4), jnp.ones(4)
    out = np.asarray(bounds.reflect(jax.random.key(0), trials, lower, upper))
    # -0.25 -> 0.25, 1.25 -> 0.75, 7 -> 2 - 7 = -5 -> clipped to 0.
    np.testing.assert_allclose(out, [[0.25, 0.5, 0.75, 0.0]])


def test_clip_on_hand_values():
    out = bounds.clip(jax.random.key(0), jnp.array([[-2.0, 0.5, 3.0]]),
                      jnp.zeros(3), jnp.ones(3))
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])


# --- adaptation -----------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(adaptation.ADAPTATIONS))
def test_adaptation_samples_in_range_and_updates(name):
    scheme = adaptation.ADAPTATIONS[name]
    params = de.DEParams()
    state = scheme.init(P, params)
    weight, rate = scheme.sample(jax.random.key(0), state, params, P)
    assert weight.shape == rate.shape == (P,)
    assert ((weight > 0) & (weight <= 2)).all()
    assert ((rate >= 0) & (rate <= 1)).all()
    improved = jnp.arange(P) < P // 2
    gain = jnp.where(improved, 1.0, 0.0)
    new = scheme.update(state, weight, rate, improved, gain, params)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    nothing = scheme.update(state, weight, rate, jnp.zeros(P, bool), jnp.zeros(P),
                            params)
    jax.tree.map(np.testing.assert_array_equal, nothing, state)


def test_constant_returns_params():
    weight, rate = adaptation.constant_sample(
        jax.random.key(0), (), de.DEParams(0.3, 0.2), P)
    np.testing.assert_allclose(weight, 0.3)
    np.testing.assert_allclose(rate, 0.2)


def test_jde_keeps_new_values_only_on_success():
    scheme = adaptation.ADAPTATIONS["jde"]
    params = de.DEParams(jde_tau_f=1.0, jde_tau_cr=1.0)  # always redraw
    state = scheme.init(P, params)
    weight, rate = scheme.sample(jax.random.key(0), state, params, P)
    assert ((weight >= 0.1) & (weight <= 1.0)).all()
    improved = jnp.arange(P) % 2 == 0
    new = scheme.update(state, weight, rate, improved, jnp.zeros(P), params)
    np.testing.assert_array_equal(
        new.differential_weight, np.where(improved, weight, 0.5))
    np.testing.assert_array_equal(new.crossover_rate, np.where(improved, rate, 0.9))


def test_jade_update_is_lehmer_and_arithmetic_mean():
    params = de.DEParams(jade_c=0.1)
    state = adaptation.jade_init(4, params)
    weight = jnp.array([0.2, 0.4, 0.8, 0.9])
    rate = jnp.array([0.1, 0.3, 0.5, 0.7])
    improved = jnp.array([True, True, True, False])
    new = adaptation.jade_update(state, weight, rate, improved, jnp.zeros(4), params)
    lehmer = (0.04 + 0.16 + 0.64) / (0.2 + 0.4 + 0.8)
    np.testing.assert_allclose(new.weight_mean, 0.9 * 0.5 + 0.1 * lehmer, rtol=1e-6)
    np.testing.assert_allclose(new.rate_mean, 0.9 * 0.5 + 0.1 * 0.3, rtol=1e-6)


def test_shade_update_writes_weighted_means_at_index():
    params = de.DEParams()
    state = adaptation.shade_init(4, params)
    weight = jnp.array([0.2, 0.4, 0.8, 0.9])
    rate = jnp.array([0.1, 0.3, 0.5, 0.7])
    improved = jnp.array([True, True, False, False])
    gain = jnp.array([1.0, 3.0, 0.0, 0.0])
    new = adaptation.shade_update(state, weight, rate, improved, gain, params)
    w = np.array([0.25, 0.75])
    np.testing.assert_allclose(new.weight_memory[0],
                               (w @ [0.04, 0.16]) / (w @ [0.2, 0.4]), rtol=1e-6)
    np.testing.assert_allclose(new.rate_memory[0], w @ [0.1, 0.3], rtol=1e-6)
    np.testing.assert_allclose(new.weight_memory[1:], 0.5)
    assert int(new.index) == 1


def test_truncated_cauchy_is_positive_and_at_most_one():
    uniform = jax.random.uniform(jax.random.key(0), (10000,))
    draws = np.asarray(adaptation.truncated_cauchy(uniform, jnp.float32(0.05), 0.1))
    assert ((draws > 0) & (draws <= 1)).all()
    # Median of Cauchy(0.05, 0.1) given > 0: solve for the conditional median.
    tail = 0.5 - np.arctan(-0.5) / np.pi
    median = 0.05 + 0.1 * np.tan(np.pi * (1 - tail / 2 - 0.5))
    assert abs(np.median(draws) - median) < 0.01


# --- configuration ----------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    (dict(mutation="rand/3"), "mutation"),
    (dict(crossover="uniform"), "crossover"),
    (dict(adaptation="lshade"), "adaptation"),
    (dict(bounds="wrap"), "bounds"),
    (dict(bounds=("clip", "clip")), "bounds"),
    (dict(population_size=3), "population_size"),
    (dict(population_size=5, mutation="rand/2"), "population_size"),
    (dict(max_generations=-1), "max_generations"),
    (dict(archive=True), "archive"),
])
def test_bad_config_names_the_field(kwargs, field):
    arguments = dict(population_size=10, num_dims=3)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=field):
        de.DEConfig(**arguments)


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="rand/1"):
        de.DEConfig(10, 3, mutation="nope")


def test_config_is_hashable_and_resolves_archive():
    config = de.DEConfig(10, 3, mutation="current-to-pbest/1", bounds=["clip"] * 3)
    assert config.archive and config.archive_size == 10
    assert hash(config) == hash(de.DEConfig(10, 3, mutation="current-to-pbest/1",
                                            bounds=("clip",) * 3))
    assert not de.DEConfig(10, 3).archive


@pytest.mark.parametrize("field, value", [
    ("differential_weight", 0.0), ("differential_weight", 2.5),
    ("crossover_rate", 1.5), ("pbest_fraction", 0.0), ("jade_c", -0.1),
    ("crossover_rate", float("nan")),
])
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        de.DEParams(**{field: value}).validate()
    de.DEParams().validate()
