"""Properties over the operator registries.

- Every trial `ask` proposes lies in its problem's box: every mutation x crossover
  (adaptations in turn), all bound handlers spread over the dimensions,
  F at its maximum (2, the largest overshoot), and populations pressed into the
  corners of boxes of widths from 0 to 1e4.
- `queries` counts exactly the candidates the fitness function evaluated for the
  problem while it was active (counted on the host), P x (generations + 1), however
  the run is chunked; a problem not solved ran every generation.
- A NaN fitness never solves a problem, even where the fitness function claims it does.
"""

import itertools

import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from deattack import de

P, D, B = 8, 6, 12
# Every bound handler on some dimension of every problem.
BOUNDS_PER_DIM = tuple(itertools.islice(itertools.cycle(sorted(de.BOUNDS)), D))
# Every mutation x crossover, adaptations in turn. Eager `ask` compiles each new
# primitive once (~8 s for the first configuration here, then 0.1-2 s each).
COMBINATIONS = [(mutation, crossover, sorted(de.ADAPTATIONS)[i % len(de.ADAPTATIONS)])
                for i, (mutation, crossover) in enumerate(itertools.product(sorted(de.MUTATIONS),
                                                                            sorted(de.CROSSOVERS)))]


def _sphere(candidates, context, active):
    del active
    fitness = jnp.sum(candidates**2, axis=-1)
    return fitness, fitness < context[:, None]


def _adversarial_problems(seed: int):
    """Boxes of widths 0 .. 1e4 at offsets up to +-1e3; half the members on box corners."""
    rng = np.random.default_rng(seed)
    lower = rng.uniform(-1e3, 1e3, (B, D)).astype(np.float32)
    width = rng.choice(np.asarray([0.0, 1e-3, 1.0, 37.5, 1e4], np.float32), (B, D))
    upper = lower + width
    corners = lower[:, None] + width[:, None] * rng.integers(0, 2, (B, P, D)).astype(np.float32)
    inside = lower[:, None] + width[:, None] * rng.uniform(0, 1, (B, P, D)).astype(np.float32)
    population = np.where((np.arange(P) < P // 2)[None, :, None], corners, inside)
    return jnp.asarray(lower), jnp.asarray(upper), jnp.asarray(population)


@pytest.mark.parametrize("mutation, crossover, adaptation", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_ask_keeps_every_trial_in_its_box(mutation, crossover, adaptation):
    position = COMBINATIONS.index((mutation, crossover, adaptation))
    config = de.DEConfig(P, D, mutation=mutation, crossover=crossover, adaptation=adaptation,
                         bounds=BOUNDS_PER_DIM, max_generations=5)
    params = de.DEParams(differential_weight=2.0, crossover_rate=0.5)
    lower, upper, population = _adversarial_problems(position)
    keys = jax.random.split(jax.random.key(position), B)
    state = de.init(config, params, keys, lower, upper, population, fitness_fn=_sphere,
                    context=jnp.full((B,), -1.0))
    trials, weight, rate = de.ask(config, params, state)
    trials = np.asarray(trials)
    assert trials.shape == (B, P, D) and np.isfinite(trials).all()
    low, high = np.asarray(lower)[:, None], np.asarray(upper)[:, None]
    outside = (trials < low) | (trials > high)
    assert not outside.any(), np.argwhere(outside)[:5]


# --- queries and NaN ----------------------------------------------------------------

# The simplest operators: the loop's bookkeeping is what is tested, and they compile in
# ~4 s rather than ~11 s (jde + bin + mixed bounds).
QUERY_CONFIG = de.DEConfig(P, D, mutation="rand/1", crossover="none", adaptation="constant",
                           max_generations=15)
_evaluated = np.zeros(4, np.int64)  # candidates evaluated per problem, counted on the host


def _count(active):
    _evaluated[:] += P * np.asarray(active, np.int64)


def _counting_lying_sphere(candidates, context, active):
    """Sphere, solved below context["tolerance"]; the host counts P candidates for every
    active problem. Where the first gene exceeds context["nan_above"] the fitness is NaN
    and "solved" is claimed (a victim whose logits turn NaN, read by a careless criterion)."""
    jax.debug.callback(_count, active)
    fitness = jnp.sum(candidates**2, axis=-1)
    broken = candidates[..., 0] > context["nan_above"][:, None]
    solved = (fitness < context["tolerance"][:, None]) | broken
    return jnp.where(broken, jnp.nan, fitness), solved


_init = jax.jit(de.init, static_argnames=("config", "fitness_fn"))
_run = jax.jit(de.run, static_argnames=("config", "fitness_fn"))


@hypothesis.settings(max_examples=8, deadline=None, derandomize=True)
@hypothesis.given(
    seed=st.integers(0, 2**31 - 1),
    # -1: never solved; 1e9: solved by the initial population; in between: after some generations.
    tolerances=hnp.arrays(np.float32, (4,), elements=st.sampled_from([-1.0, 2.0, 8.0, 20.0, 1e9])),
    nan_above=hnp.arrays(np.float32, (4,), elements=st.sampled_from([np.inf, 0.0, 1.0])),
    chunk=st.integers(1, 16),
    weight=st.floats(0.1, 2.0),
)
def test_queries_are_exact_and_nan_never_solves(seed, tolerances, nan_above, chunk, weight):
    _evaluated[:] = 0
    params = de.DEParams(differential_weight=weight)
    keys = jax.random.split(jax.random.key(seed), 4)
    context = {"tolerance": jnp.asarray(tolerances), "nan_above": jnp.asarray(nan_above)}
    state = _init(QUERY_CONFIG, params, keys, jnp.full((4, D), -2.0), jnp.full((4, D), 3.0),
                  fitness_fn=_counting_lying_sphere, context=context)
    while bool(np.asarray(de.active(QUERY_CONFIG, state)).any()):
        state = _run(QUERY_CONFIG, params, state, _counting_lying_sphere, context, chunk)
    jax.effects_barrier()
    queries, generation = np.asarray(state.queries), np.asarray(state.generation)
    done, best = np.asarray(state.done), np.asarray(state.best_fitness)
    fitness, members = np.asarray(state.fitness), np.asarray(state.best_member)
    np.testing.assert_array_equal(queries, _evaluated)
    np.testing.assert_array_equal(queries, P * (generation + 1))
    assert (generation[~done] == QUERY_CONFIG.max_generations).all()
    assert (generation <= QUERY_CONFIG.max_generations).all()
    # Done only through a real solution: finite fitness below tolerance, never a NaN claim.
    assert (best[done] < tolerances[done]).all()
    assert not (best[~done] < tolerances[~done]).any()
    finite = np.isfinite(best)
    assert (members[finite, 0] <= nan_above[finite]).all()
    assert not np.isnan(fitness).any()
    assert not done[tolerances < 0].any()
