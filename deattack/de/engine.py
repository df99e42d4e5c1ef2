"""The differential-evolution loop: init, ask, tell, step, run.

B independent problems evolve together, each with its own population, box and
PRNG key. Operators are written for one problem ([P, D]) and `jax.vmap`ped over
B, and generation g of a problem draws only from fold_in(its key, g), so a
problem's trajectory does not depend on which other problems share the batch,
on its slot, or on when it was (re)filled.

Example:
    >>> config = DEConfig(population_size=20, num_dims=5, crossover="bin")
    >>> params = DEParams()
    >>> def sphere(candidates, context, active):  # [B, P, D] -> ([B, P], [B, P])
    ...     del active  # cheap enough to evaluate every problem
    ...     fitness = jnp.sum(candidates**2, axis=-1)
    ...     return fitness, fitness < context[:, None]
    >>> keys = jax.random.split(jax.random.key(0), 3)       # B = 3 problems
    >>> lower, upper = -jnp.ones((3, 5)), jnp.ones((3, 5))
    >>> tolerance = jnp.full((3,), 1e-6)
    >>> state = init(config, params, keys, lower, upper,
    ...              fitness_fn=sphere, context=tolerance)
    >>> run_jit = jax.jit(run, static_argnames=("config", "fitness_fn"))
    >>> state = run_jit(config, params, state, sphere, tolerance)
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from deattack.de import adaptation as adaptation_lib
from deattack.de import bounds as bounds_lib
from deattack.de import crossover as crossover_lib
from deattack.de import mutation as mutation_lib
from deattack.de import space as space_lib
from deattack.de.config import DEConfig, DEParams
from deattack.de.selection import best_index, sanitize
from deattack.de.state import DEState

Array = jax.Array
# (candidates [B, P, D], context, active [B] bool) -> (fitness [B, P] float32,
# solved [B, P] bool). `active` marks the problems whose results will be used; a
# fitness function may skip the others (e.g. not run the model on them) and
# return anything there, since solved or exhausted problems are frozen.
FitnessFn = Callable[[Array, Any], tuple[Array, Array]]

# fold_in tag of the initial population; generations use tags 0, 1, 2, ...,
# and int32 generation counts never reach this one.
_INIT_TAG = 2**31 - 1
# Subkeys of one generation: adaptation, mutation, crossover, bounds, archive.
_NUM_GENERATION_KEYS = 5


def _generation_keys(key: Array, generation: Array) -> Array:
    return jax.random.split(jax.random.fold_in(key, generation),
                            _NUM_GENERATION_KEYS)


def active(config: DEConfig, state: DEState) -> Array:
    """[B] bool: problems neither solved nor out of generations."""
    return ~state.done & (state.generation < config.max_generations)


def _apply_bounds(config: DEConfig, key: Array, trials: Array, lower: Array,
                  upper: Array) -> Array:
    """Applies each dimension's bound handling. trials [P, D], lower/upper [D]."""
    return bounds_lib.apply_per_dimension(config.bounds_per_dim, key, trials, lower, upper)


def init(config: DEConfig, params: DEParams, key: Array, lower: Array,
         upper: Array, population: Array | None = None, *,
         fitness_fn: FitnessFn, context: Any) -> DEState:
    """Creates and evaluates the initial populations of B problems.

    Args:
      config: static configuration.
      params: traced tunables (initial adaptation values).
      key: [B] typed PRNG keys (`jax.random.key`), one per problem.
      lower: [B, D] lower bounds of each problem's box.
      upper: [B, D] upper bounds.
      population: optional [B, P, D] initial members, clipped into the box;
        None draws them uniformly in the box from fold_in(key, _INIT_TAG).
      fitness_fn: (candidates [B, P, D], context, active [B] bool) -> (fitness
        [B, P] float32, solved [B, P] bool); lower fitness is better. Results of
        problems that are not active are ignored, so it may skip them.
      context: pytree with leading axis B, passed to fitness_fn untouched.

    Returns:
      A DEState at generation 0 with queries = P.
    """
    size, dims = config.population_size, config.num_dims
    lower = jnp.asarray(lower, jnp.float32)
    upper = jnp.asarray(upper, jnp.float32)
    num_problems = lower.shape[0]
    if population is None:
        def draw(problem_key, low, high):
            uniform = jax.random.uniform(
                jax.random.fold_in(problem_key, _INIT_TAG), (size, dims))
            return low[None, :] + uniform * (high - low)[None, :]
        population = jax.vmap(draw)(key, lower, upper)
    population = jnp.clip(jnp.asarray(population, jnp.float32),
                          lower[:, None, :], upper[:, None, :])
    fitness, solved = sanitize(*fitness_fn(
        population, context, jnp.ones((num_problems,), bool)))
    best = jax.vmap(best_index)(fitness, solved)
    take = jnp.arange(num_problems)
    scheme = adaptation_lib.ADAPTATIONS[config.adaptation]
    adapt = jax.tree.map(
        lambda leaf: jnp.broadcast_to(leaf, (num_problems,) + jnp.shape(leaf)),
        scheme.init(size, params))
    return DEState(
        population=population,
        fitness=fitness,
        best_member=population[take, best],
        best_fitness=fitness[take, best],
        generation=jnp.zeros((num_problems,), jnp.int32),
        done=jnp.any(solved, axis=1),
        queries=jnp.full((num_problems,), size, jnp.int32),
        key=key,
        adapt=adapt,
        archive=jnp.zeros((num_problems, config.archive_size, dims), jnp.float32),
        archive_size=jnp.zeros((num_problems,), jnp.int32),
        lower=lower,
        upper=upper,
    )


def _ask_one(config: DEConfig, params: DEParams, key, generation, population,
             fitness, adapt, archive, archive_size, lower, upper):
    """One problem's trials [P, D] and the F [P], CR [P] that made them."""
    adapt_key, mutation_key, crossover_key, bounds_key, _ = _generation_keys(
        key, generation)
    scheme = adaptation_lib.ADAPTATIONS[config.adaptation]
    weight, rate = scheme.sample(adapt_key, adapt, params, config.population_size)
    space = space_lib.make_space(lower, upper, config.kinds_per_dim)
    mutants = mutation_lib.MUTATIONS[config.mutation](
        mutation_key, population, fitness, weight, params, archive, archive_size, space)
    trials = crossover_lib.CROSSOVERS[config.crossover](
        crossover_key, population, mutants, rate)
    return _apply_bounds(config, bounds_key, trials, lower, upper), weight, rate


def ask(config: DEConfig, params: DEParams,
        state: DEState) -> tuple[Array, Array, Array]:
    """Proposes one trial per member: adaptation -> mutation -> crossover -> bounds.

    Returns:
      (trials [B, P, D] inside the box, F [B, P], CR [B, P]); pass F and CR to
      `tell` so the adaptation learns from them.
    """
    return jax.vmap(_ask_one, in_axes=(None, None) + (0,) * 9)(
        config, params, state.key, state.generation, state.population,
        state.fitness, state.adapt, state.archive, state.archive_size,
        state.lower, state.upper)


def _update_archive(key, archive, archive_size, parents, replaced):
    """JADE: add replaced parents; when over capacity keep a uniform random
    subset (the paper removes random members until the size fits)."""
    capacity = archive.shape[0]
    candidates = jnp.concatenate([archive, parents], axis=0)
    valid = jnp.concatenate([jnp.arange(capacity) < archive_size, replaced])
    priority = jnp.where(valid, jax.random.uniform(key, valid.shape), 2.0)
    keep = jnp.argsort(priority)[:capacity]
    count = jnp.minimum(jnp.sum(valid.astype(jnp.int32)), capacity)
    return candidates[keep], count


def _tell_one(config: DEConfig, params: DEParams, state: DEState, trials,
              trial_fitness, trial_solved, weight, rate) -> DEState:
    """Greedy one-to-one selection for one problem (state leaves unbatched)."""
    trial_fitness, trial_solved = sanitize(trial_fitness, trial_solved)
    # A solving trial is kept even if its fitness is worse, so the frozen
    # state of a done problem holds the solution.
    replaced = (trial_fitness <= state.fitness) | trial_solved
    population = jnp.where(replaced[:, None], trials, state.population)
    fitness = jnp.where(replaced, trial_fitness, state.fitness)
    # Unreplaced members cannot be solved, or the problem would be done.
    solved = replaced & trial_solved
    best = best_index(fitness, solved)

    finite = jnp.isfinite(state.fitness) & jnp.isfinite(trial_fitness)
    gain = jnp.where(replaced & finite,
                     jnp.maximum(state.fitness - trial_fitness, 0.0), 0.0)
    scheme = adaptation_lib.ADAPTATIONS[config.adaptation]
    adapt = scheme.update(state.adapt, weight, rate, replaced, gain, params)

    archive, archive_size = state.archive, state.archive_size
    if config.archive:
        archive_key = _generation_keys(state.key, state.generation)[4]
        archive, archive_size = _update_archive(
            archive_key, archive, archive_size, state.population, replaced)

    new = state.replace(
        population=population,
        fitness=fitness,
        best_member=population[best],
        best_fitness=fitness[best],
        generation=state.generation + 1,
        done=jnp.any(solved),
        queries=state.queries + config.population_size,
        adapt=adapt,
        archive=archive,
        archive_size=archive_size,
    )
    # Solved or exhausted problems freeze and are charged nothing. The key
    # never changes, and typed keys do not go through jnp.where.
    is_active = ~state.done & (state.generation < config.max_generations)
    frozen = jax.tree.map(lambda n, o: jnp.where(is_active, n, o),
                          new.replace(key=None), state.replace(key=None))
    return frozen.replace(key=state.key)


def tell(config: DEConfig, params: DEParams, state: DEState, trials: Array,
         trial_fitness: Array, trial_solved: Array, weight: Array,
         rate: Array) -> DEState:
    """Selects, then updates best, done, queries, generation, adaptation, archive.

    A trial replaces its target when its fitness is <= the target's (NaN counts
    as +inf), or when it solves the problem. Problems that were done, or had
    run config.max_generations, before this call are left unchanged.

    Args:
      config, params: as in `init`.
      state: the state `ask` was called with.
      trials: [B, P, D] from `ask`.
      trial_fitness: [B, P] float32.
      trial_solved: [B, P] bool.
      weight: [B, P] F from `ask`.
      rate: [B, P] CR from `ask`.

    Returns:
      The next DEState.
    """
    return jax.vmap(_tell_one, in_axes=(None, None, 0, 0, 0, 0, 0, 0))(
        config, params, state, trials, trial_fitness, trial_solved, weight, rate)


def step(config: DEConfig, params: DEParams, state: DEState,
         fitness_fn: FitnessFn, context: Any) -> DEState:
    """One generation: ask -> evaluate -> tell."""
    trials, weight, rate = ask(config, params, state)
    trial_fitness, trial_solved = fitness_fn(trials, context, active(config, state))
    return tell(config, params, state, trials, trial_fitness, trial_solved,
                weight, rate)


def run(config: DEConfig, params: DEParams, state: DEState,
        fitness_fn: FitnessFn, context: Any,
        num_generations: int | Array | None = None) -> DEState:
    """Runs generations in a `lax.while_loop` until no problem is active.

    Jit it once with the config and fitness function static:
    `jax.jit(run, static_argnames=("config", "fitness_fn"))`.

    Args:
      config, params, state, fitness_fn, context: as in `step`.
      num_generations: optional (static or traced) cap on the generations run
        by this call, so the host can refill finished problems between chunks.

    Returns:
      The state once every problem is done or at config.max_generations, or
      after num_generations generations.
    """
    return run_while_active(lambda s: active(config, s),
                            lambda s: step(config, params, s, fitness_fn, context),
                            state, num_generations)


def run_while_active(is_active: Callable[[Any], Array], step_once: Callable[[Any], Any], state: Any,
                     num_generations: int | Array | None = None) -> Any:
    """`step_once` in a `lax.while_loop` while `is_active(state)` has an active problem,
    at most `num_generations` times (None: no cap). The loop every batched optimiser
    (DE, deattack.es.cma_es, deattack.attack.sparse_rs) runs its generations in."""
    limit = None if num_generations is None else jnp.asarray(num_generations, jnp.int32)

    def keep_going(carry):
        loop_state, count = carry
        going = jnp.any(is_active(loop_state))
        return going if limit is None else going & (count < limit)

    def body(carry):
        loop_state, count = carry
        return step_once(loop_state), count + 1

    state, _ = jax.lax.while_loop(keep_going, body, (state, jnp.zeros((), jnp.int32)))
    return state
