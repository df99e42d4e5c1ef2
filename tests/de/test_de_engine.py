"""The engine's contracts: invariance, determinism, NaN, freezing, queries, jit."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack import de
from tests.de.de_benchmarks import sphere_fitness

P, D = 8, 3
CONFIG = de.DEConfig(P, D, mutation="current-to-pbest/1", crossover="bin",
                     adaptation="jade", bounds=("reflect", "clip", "reinit"),
                     max_generations=50)
run = jax.jit(de.run, static_argnames=("config", "fitness_fn"))


def _start(num_problems, config=CONFIG, seed=0, tolerance=-1.0, fitness_fn=sphere_fitness):
    keys = jax.random.split(jax.random.key(seed), num_problems)
    lower = jnp.full((num_problems, D), -2.0)
    upper = jnp.full((num_problems, D), 3.0)
    context = jnp.full((num_problems,), tolerance)
    state = de.init(config, de.DEParams(), keys, lower, upper,
                    fitness_fn=fitness_fn, context=context)
    return state, context


def _assert_states_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal,
                 a.replace(key=None), b.replace(key=None))


@pytest.mark.parametrize("config", [
    de.DEConfig(P, D, mutation="current-to-pbest/1", crossover="bin",
                adaptation="jde", bounds=("reflect", "clip", "reinit")),
    de.DEConfig(P, D, mutation="best/2", crossover="exp"),
    de.DEConfig(P, D),
], ids=repr)
def test_batch_invariance_bit_identical(config):
    start, context = _start(4, config)
    together = run(config, de.DEParams(), start, sphere_fitness, context, 20)
    for b in range(4):
        alone = jax.tree.map(lambda leaf: leaf[b:b + 1], start)
        alone = run(config, de.DEParams(), alone, sphere_fitness, context[b:b + 1], 20)
        _assert_states_equal(jax.tree.map(lambda leaf: leaf[b:b + 1], together), alone)


@pytest.mark.parametrize("adaptation", ["jade", "shade"])
def test_batch_invariance_with_transcendental_sampling(adaptation):
    # JADE/SHADE draw F and CR through tan and ndtri, which XLA:CPU evaluates
    # with vectorised approximations whose last bit depends on the array length
    # (B * P), so B problems together match each alone to float32 rounding only.
    config = de.DEConfig(P, D, mutation="current-to-pbest/1", crossover="bin",
                         adaptation=adaptation, bounds=("reflect", "clip", "reinit"))
    start, context = _start(4, config)
    together = run(config, de.DEParams(), start, sphere_fitness, context, 10)
    for b in range(4):
        alone = jax.tree.map(lambda leaf: leaf[b:b + 1], start)
        alone = run(config, de.DEParams(), alone, sphere_fitness, context[b:b + 1], 10)
        np.testing.assert_allclose(together.population[b:b + 1], alone.population,
                                   rtol=1e-3, atol=1e-5)


def test_same_key_same_result_and_chunks_equal_one_run():
    state, context = _start(2)
    once = run(CONFIG, de.DEParams(), state, sphere_fitness, context, 12)
    again = run(CONFIG, de.DEParams(), state, sphere_fitness, context, 12)
    _assert_states_equal(once, again)
    chunked = run(CONFIG, de.DEParams(), state, sphere_fitness, context, 5)
    chunked = run(CONFIG, de.DEParams(), chunked, sphere_fitness, context, 7)
    _assert_states_equal(once, chunked)
    step = jax.jit(de.step, static_argnames=("config", "fitness_fn"))
    stepped = state
    for _ in range(12):
        stepped = step(CONFIG, de.DEParams(), stepped, sphere_fitness, context)
    # A separately compiled program may fuse (FMA) differently: float32 rounding.
    np.testing.assert_allclose(stepped.population, once.population,
                               rtol=1e-3, atol=1e-6)


def test_population_in_box_and_queries_exact():
    state, context = _start(3)
    state = run(CONFIG, de.DEParams(), state, sphere_fitness, context)
    assert (np.asarray(state.generation) == CONFIG.max_generations).all()
    np.testing.assert_array_equal(state.queries, P * (1 + CONFIG.max_generations))
    population = np.asarray(state.population)
    assert (population >= -2.0).all() and (population <= 3.0).all()
    assert (np.asarray(state.best_fitness) == np.asarray(state.fitness).min(axis=1)).all()


def _nan_fitness(candidates, context, active):
    """Sphere, but NaN wherever the first gene is positive."""
    del active
    fitness = jnp.sum(candidates**2, axis=-1)
    fitness = jnp.where(candidates[..., 0] > 0, jnp.nan, fitness)
    return fitness, fitness < context[:, None]


def test_nan_never_becomes_best():
    config = de.DEConfig(P, D, crossover="bin", max_generations=30)
    state, context = _start(3, config, fitness_fn=_nan_fitness)
    state = run(config, de.DEParams(), state, _nan_fitness, context)
    assert np.isfinite(np.asarray(state.best_fitness)).all()
    assert (np.asarray(state.best_member)[:, 0] <= 0).all()
    assert not np.isnan(np.asarray(state.fitness)).any()


def test_all_nan_problem_has_infinite_best():
    def all_nan(candidates, context, active):
        del context, active
        nan = jnp.full(candidates.shape[:2], jnp.nan)
        return nan, jnp.zeros(candidates.shape[:2], bool)
    config = de.DEConfig(P, D, max_generations=3)
    state, context = _start(1, config, fitness_fn=all_nan)
    state = run(config, de.DEParams(), state, all_nan, context)
    assert np.isposinf(np.asarray(state.best_fitness)).all()


def test_done_problems_freeze_and_stop_counting():
    config = de.DEConfig(P, D, crossover="bin", max_generations=200)
    state, _ = _start(3, config)
    # Problem 0 is solved easily, 1 needs more work, 2 never.
    context = jnp.array([1.0, 1e-3, -1.0])
    state = run(config, de.DEParams(), state, sphere_fitness, context)
    generation = np.asarray(state.generation)
    assert generation[0] < generation[1] < generation[2] == 200
    np.testing.assert_array_equal(state.queries, P * (1 + generation))
    np.testing.assert_array_equal(state.done, [True, True, False])
    assert (np.asarray(state.best_fitness)[:2] < np.asarray(context)[:2]).all()
    again = de.step(config, de.DEParams(), state, sphere_fitness, context)
    _assert_states_equal(again, state)


def test_solved_at_init_is_done_with_no_generation():
    state, _ = _start(2, de.DEConfig(P, D), tolerance=1e9)
    assert np.asarray(state.done).all()
    state = run(de.DEConfig(P, D), de.DEParams(), state, sphere_fitness,
                jnp.full((2,), 1e9))
    np.testing.assert_array_equal(state.generation, 0)
    np.testing.assert_array_equal(state.queries, P)


def test_run_does_not_recompile_for_new_params_or_chunk_size():
    traces = []

    def counted(candidates, context, active):
        traces.append(1)  # runs at trace time only
        return sphere_fitness(candidates, context, active)

    jitted = jax.jit(de.run, static_argnames=("config", "fitness_fn"))
    config = de.DEConfig(P, D, crossover="bin", max_generations=5)
    state, context = _start(2, config)
    jitted(config, de.DEParams(), state, counted, context, 3)
    before = len(traces)
    jitted(config, de.DEParams(differential_weight=0.8, crossover_rate=0.3),
           state, counted, context, 4)
    assert len(traces) == before


def test_init_keeps_given_population_clipped():
    population = jnp.full((1, P, D), 10.0)
    state = de.init(de.DEConfig(P, D), de.DEParams(), jax.random.split(jax.random.key(0), 1),
                    jnp.zeros((1, D)), jnp.ones((1, D)), population,
                    fitness_fn=sphere_fitness, context=jnp.zeros(1))
    np.testing.assert_array_equal(state.population, 1.0)


def test_archive_fills_and_stays_inside_box():
    state, context = _start(2)
    state = run(CONFIG, de.DEParams(), state, sphere_fitness, context, 30)
    size = np.asarray(state.archive_size)
    assert ((size > 0) & (size <= P)).all()
    archive = np.asarray(state.archive)
    for b in range(2):
        valid = archive[b, :size[b]]
        assert ((valid >= -2.0) & (valid <= 3.0)).all()
