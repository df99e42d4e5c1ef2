"""Operators that read the search space's dimension kinds (rand/1-snap,
rand/1-snap-local) and random search, against their formulas on a hand-made
population, plus their distributions and one run inside the jitted engine."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from deattack import de
from deattack.de import mutation

# Two pixel-like blocks: (integer, integer, extreme, extreme, extreme) genes, a lattice
# of 8 cells and a colour-like range [0, 255]; one real gene at the end.
KINDS = ("integer", "integer", "extreme", "extreme", "extreme") * 2 + ("real",)
D = len(KINDS)
LOWER = np.array([0, 0, 0, 0, 0] * 2 + [-1], np.float32)
UPPER = np.array([8, 8, 255, 255, 255] * 2 + [1], np.float32)
INTEGER = np.array([k == "integer" for k in KINDS])
EXTREME = np.array([k == "extreme" for k in KINDS])


def _space():
    return de.SearchSpace(lower=jnp.asarray(LOWER), upper=jnp.asarray(UPPER),
                          integer=jnp.asarray(INTEGER), extreme=jnp.asarray(EXTREME))


def _population(size, seed=0):
    rng = np.random.default_rng(seed)
    # Strictly inside the box, so no gene sits on a bound before snapping.
    population = LOWER + rng.uniform(0.01, 0.99, (size, D)) * (UPPER - LOWER)
    return population.astype(np.float32), rng.uniform(0, 1, size).astype(np.float32)


@functools.partial(jax.jit, static_argnames="name")
def _jitted_mutation(name, key, population, fitness, weight, params, space):
    return mutation.MUTATIONS[name](key, population, fitness, weight, params,
                                    jnp.zeros((0, D), jnp.float32), jnp.zeros((), jnp.int32), space)


def _mutate(name, key, population, fitness, params, weight=0.5):
    # Jitted: one compilation per (operator, P) instead of one per primitive.
    return np.asarray(_jitted_mutation(name, key, jnp.asarray(population), jnp.asarray(fitness),
                                       jnp.float32(weight), params, _space()))


def _rand_1(key, population, weight=0.5):
    r = np.asarray(mutation.draw_distinct_indices(key, population.shape[0], 3))
    return population[r[:, 0]] + weight * (population[r[:, 1]] - population[r[:, 2]])


def _nearer_bound(values):
    return np.where(values < (LOWER + UPPER) / 2, LOWER, UPPER)


# --- rand/1-snap ------------------------------------------------------------------

def test_snap_with_zero_probability_is_rand_1():
    population, fitness = _population(12)
    key = jax.random.key(7)
    params = de.DEParams(snap_probability=0.0)
    np.testing.assert_array_equal(_mutate("rand/1-snap", key, population, fitness, params),
                                  _mutate("rand/1", key, population, fitness, params))


def test_snap_with_probability_one_moves_every_extreme_gene_to_the_nearer_bound():
    population, fitness = _population(12)
    key = jax.random.key(8)
    mutants = _mutate("rand/1-snap", key, population, fitness, de.DEParams(snap_probability=1.0))
    reference = _rand_1(key, population)
    expected = np.where(EXTREME, _nearer_bound(reference), reference)
    np.testing.assert_allclose(mutants, expected, rtol=1e-6, atol=1e-4)
    assert np.isin(mutants[:, EXTREME], [0.0, 255.0]).all()


def test_snap_fraction_matches_probability():
    size, rho = 4000, 0.3
    population, fitness = _population(size, 1)
    key = jax.random.key(9)
    mutants = _mutate("rand/1-snap", key, population, fitness, de.DEParams(snap_probability=rho))
    reference = _rand_1(key, population)
    np.testing.assert_allclose(mutants[:, ~EXTREME], reference[:, ~EXTREME], rtol=1e-6, atol=1e-4)
    extreme = mutants[:, EXTREME]
    snapped = np.isclose(extreme, _nearer_bound(reference)[:, EXTREME])
    kept = np.isclose(extreme, reference[:, EXTREME], atol=1e-3)
    assert (snapped | kept).all()
    # 4000 x 6 coins: standard error sqrt(0.21 / 24000) = 0.003; 5 sigma = 0.015.
    assert abs(snapped.mean() - rho) < 0.015


# --- rand/1-snap-local --------------------------------------------------------------

def test_local_with_zero_probability_is_rand_1_snap():
    population, fitness = _population(12)
    key = jax.random.key(10)
    params = de.DEParams(local_probability=0.0, snap_probability=0.4)
    np.testing.assert_array_equal(_mutate("rand/1-snap-local", key, population, fitness, params),
                                  _mutate("rand/1-snap", key, population, fitness, params))


@pytest.mark.parametrize("local_probability", [1.0, 0.5])
def test_local_moves_match_formula(local_probability):
    """NumPy transcription of the documented draw layout: [P, 2 + 3D] uniforms from
    fold_in(key, 2): local coin, p-best choice, D steps, D redraw coins, D bound choices."""
    size = 20
    population, fitness = _population(size, 2)
    key = jax.random.key(11)
    params = de.DEParams(local_probability=local_probability, snap_probability=0.5,
                         pbest_fraction=0.2)
    mutants = _mutate("rand/1-snap-local", key, population, fitness, params)
    u = np.asarray(jax.random.uniform(jax.random.fold_in(key, 2), (size, 2 + 3 * D)))
    local = u[:, 0] < local_probability
    top = np.argsort(fitness)[:4]  # round(0.2 * 20) best members
    pbest = top[np.minimum(np.floor(u[:, 1] * 4).astype(int), 3)]
    step = np.minimum(np.floor(u[:, 2:2 + D] * 3), 2) - 1
    base = population[pbest]
    moves = np.where(INTEGER, np.floor(base) + step + 0.5, base)
    corner = np.where(u[:, 2 + 2 * D:] < 0.5, LOWER, UPPER)
    moves = np.where(EXTREME & (u[:, 2 + D:2 + 2 * D] < 0.5), corner, moves)
    others = _mutate("rand/1-snap", key, population, fitness, params)
    # Real genes (nothing known about them) always take the DE move.
    expected = np.where(local[:, None] & (INTEGER | EXTREME), moves, others)
    np.testing.assert_allclose(mutants, expected, rtol=1e-6, atol=1e-5)
    if local_probability == 1.0:
        cells = np.floor(mutants[:, INTEGER])
        assert (np.abs(cells - np.floor(base[:, INTEGER])) <= 1).all()
        np.testing.assert_array_equal(mutants[:, INTEGER] - cells, 0.5)  # cell centres


def test_local_move_distributions():
    size = 4000
    population, fitness = _population(size, 3)
    params = de.DEParams(local_probability=1.0, snap_probability=1.0, pbest_fraction=0.01)
    mutants = _mutate("rand/1-snap-local", jax.random.key(12), population, fitness, params)
    top = np.argsort(fitness)[:40]
    # Every extreme gene is a random bound, 1/2 each: 4000 x 6 coins, 5 sigma = 0.016.
    extreme = mutants[:, EXTREME]
    assert np.isin(extreme, [0.0, 255.0]).all()
    assert abs((extreme == 255.0).mean() - 0.5) < 0.016
    # Integer genes land within one cell of a top-40 member's: steps uniform on {-1, 0, 1}.
    key = jax.random.fold_in(jax.random.key(12), 2)
    u = np.asarray(jax.random.uniform(key, (size, 2 + 3 * D)))
    pbest = top[np.minimum(np.floor(u[:, 1] * 40).astype(int), 39)]
    steps = np.floor(mutants[:, INTEGER]) - np.floor(population[pbest][:, INTEGER])
    counts = np.array([(steps == s).sum() for s in (-1, 0, 1)])
    assert counts.sum() == steps.size
    assert scipy.stats.chisquare(counts).pvalue > 1e-4
    # The real gene is the DE move's (rand/1: never snapped, never a member's copy).
    reference = _rand_1(jax.random.key(12), population)
    np.testing.assert_allclose(mutants[:, -1], reference[:, -1], rtol=1e-6, atol=1e-5)


def test_local_on_real_dimensions_is_rand_1():
    population, fitness = _population(12, 5)
    key = jax.random.key(14)
    params = de.DEParams(local_probability=1.0, snap_probability=1.0)
    real = de.SearchSpace(lower=jnp.asarray(LOWER), upper=jnp.asarray(UPPER),
                          integer=jnp.zeros(D, bool), extreme=jnp.zeros(D, bool))
    got = np.asarray(_jitted_mutation("rand/1-snap-local", key, jnp.asarray(population), jnp.asarray(fitness),
                                      jnp.float32(0.5), params, real))
    np.testing.assert_allclose(got, _rand_1(key, population), rtol=1e-6, atol=1e-4)


# --- random search ------------------------------------------------------------------

def test_random_is_uniform_in_the_box_and_ignores_the_population():
    size = 4000
    population, fitness = _population(size, 4)
    key = jax.random.key(13)
    trials = _mutate("random", key, population, fitness, de.DEParams())
    again = _mutate("random", key, np.zeros_like(population), -fitness, de.DEParams())
    np.testing.assert_array_equal(trials, again)
    assert ((trials >= LOWER) & (trials <= UPPER)).all()
    for dim in range(D):
        scaled = (trials[:, dim] - LOWER[dim]) / (UPPER[dim] - LOWER[dim])
        assert scipy.stats.kstest(scaled, "uniform").pvalue > 1e-4


# --- inside the engine ---------------------------------------------------------------

def _corner_lattice_fitness(candidates, context, active):
    """Solved only at cell 5 of every integer gene with every extreme gene at 255
    (or 0 for the second block) and the real gene anywhere: an optimum on a lattice
    cell and a box corner. Fitness: distance to it (lower is better)."""
    del context, active
    target = jnp.asarray([[[5.5, 5.5, 255, 255, 255, 5.5, 5.5, 0, 0, 0, 0.0]]], jnp.float32)
    scale = jnp.asarray(UPPER - LOWER)[None, None, :]
    cells = jnp.where(jnp.asarray(INTEGER)[None, None, :], jnp.floor(candidates) + 0.5, candidates)
    error = jnp.abs(cells - target) / scale
    error = jnp.where(jnp.asarray(~INTEGER & ~EXTREME)[None, None, :], 0.0, error)
    fitness = jnp.sum(error, axis=-1)
    return fitness, fitness < 0.5 / 255


@pytest.mark.parametrize("name", ["rand/1-snap", "random"])
def test_runs_jitted_in_the_engine(name):
    config = de.DEConfig(20, D, mutation=name, bounds="reflect", dim_kinds=KINDS,
                         max_generations=5)
    problems = 2
    keys = jax.random.split(jax.random.key(0), problems)
    lower = jnp.broadcast_to(jnp.asarray(LOWER), (problems, D))
    upper = jnp.broadcast_to(jnp.asarray(UPPER), (problems, D))
    context = jnp.zeros(problems)
    state = de.init(config, de.DEParams(), keys, lower, upper,
                    fitness_fn=_corner_lattice_fitness, context=context)
    run = jax.jit(de.run, static_argnames=("config", "fitness_fn"))
    state = run(config, de.DEParams(), state, _corner_lattice_fitness, context)
    population = np.asarray(state.population)
    assert ((population >= LOWER) & (population <= UPPER)).all()
    queries = np.asarray(state.queries)
    np.testing.assert_array_equal(queries, 20 * (1 + np.asarray(state.generation)))


def test_structured_operator_beats_rand_1_on_a_corner_lattice_problem():
    """The same 8 problems, the same budget: rand/1-snap-local solves more of them, and
    faster, than rand/1 on an optimum at lattice cells and box corners."""
    problems = 8
    keys = jax.random.split(jax.random.key(1), problems)
    lower = jnp.broadcast_to(jnp.asarray(LOWER), (problems, D))
    upper = jnp.broadcast_to(jnp.asarray(UPPER), (problems, D))
    context = jnp.zeros(problems)
    run = jax.jit(de.run, static_argnames=("config", "fitness_fn"))
    solved, queries = {}, {}
    for name in ("rand/1", "rand/1-snap-local"):
        config = de.DEConfig(20, D, mutation=name, bounds="reflect", dim_kinds=KINDS,
                             max_generations=60)
        state = de.init(config, de.DEParams(), keys, lower, upper,
                        fitness_fn=_corner_lattice_fitness, context=context)
        state = run(config, de.DEParams(), state, _corner_lattice_fitness, context)
        population = np.asarray(state.population)
        assert ((population >= LOWER) & (population <= UPPER)).all()
        np.testing.assert_array_equal(state.queries, 20 * (1 + np.asarray(state.generation)))
        solved[name] = int(np.asarray(state.done).sum())
        queries[name] = float(np.asarray(state.queries).mean())
    assert solved["rand/1-snap-local"] == problems
    assert solved["rand/1"] < problems
    assert queries["rand/1-snap-local"] < queries["rand/1"]


# --- configuration ------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(dim_kinds="lattice"), dict(dim_kinds=("real", "real")),
                                    dict(dim_kinds=("real", "integer", "corner"))])
def test_bad_dim_kinds_name_the_field(kwargs):
    with pytest.raises(ValueError, match="dim_kinds"):
        de.DEConfig(10, 3, **kwargs)


def test_dim_kinds_resolve_per_dimension():
    assert de.DEConfig(10, 3).kinds_per_dim == ("real",) * 3
    config = de.DEConfig(10, 3, dim_kinds=["integer", "extreme", "real"])
    assert config.kinds_per_dim == ("integer", "extreme", "real")
    hash(config)


@pytest.mark.parametrize("field", ["snap_probability", "local_probability"])
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_bad_probabilities_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        de.DEParams(**{field: value}).validate()
