"""Mutation operators of differential evolution, for one problem.

Each operator builds one mutant (donor) vector per member from the population:

  rand/1             v_i = x_r1 + F (x_r2 - x_r3)            Storn & Price 1997
  rand/2             v_i = x_r1 + F (x_r2 - x_r3) + F (x_r4 - x_r5)
  best/1             v_i = x_best + F (x_r1 - x_r2)
  best/2             v_i = x_best + F (x_r1 - x_r2) + F (x_r3 - x_r4)
  current-to-best/1  v_i = x_i + F (x_best - x_i) + F (x_r1 - x_r2)
  current-to-pbest/1 v_i = x_i + F (x_pbest - x_i) + F (x_r1 - x~_r2)
                     (JADE, Zhang & Sanderson 2009: x_pbest is drawn among the
                     round(p P) best members, x~_r2 from population U archive)

References:
  R. Storn, K. Price. Differential evolution - a simple and efficient heuristic
    for global optimization over continuous spaces. J. Global Optim. 11, 1997.
  J. Zhang, A. C. Sanderson. JADE: adaptive differential evolution with optional
    external archive. IEEE TEVC 13(5), 2009.
  J. Su, D. V. Vargas, K. Sakurai. One pixel attack for fooling deep neural
    networks. IEEE TEVC 23(5), 2019 (rand/1, F = 0.5).

All operators share one signature, so the engine calls them alike:

  (key, population [P, D], fitness [P], weight F ([P] or scalar), params,
   archive [A, D], archive_size []) -> mutants [P, D]

The indices r1, r2, ... are distinct and differ from i; they are drawn on device
without loops over members (`draw_distinct_indices`). Fitness is lower-is-better
and NaN ranks last.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array
MutationFn = Callable[..., Array]


def _skip_excluded(draws: Array, excluded: Array) -> Array:
    """Maps draws in [0, N - m) onto the integers in [0, N) minus `excluded`.

    Walking the excluded values in increasing order and stepping past each one
    that is <= the running value gives the draw-th integer of the complement,
    so a uniform draw stays uniform (the "shift trick", O(m^2), no rejection).

    Args:
      draws: [P] int32, uniform in [0, N - m).
      excluded: [P, m] int32, distinct per row.

    Returns:
      [P] int32, never equal to any excluded value of its row.
    """
    ordered = jnp.sort(excluded, axis=1)
    for column in range(ordered.shape[1]):
        draws = draws + (draws >= ordered[:, column]).astype(draws.dtype)
    return draws


def uniform_index(uniform: Array, count) -> Array:
    """Maps uniforms in [0, 1) to integers uniform in [0, count).

    One float draw per index instead of `jax.random.randint` (which costs two
    threefry calls and a split each): every threefry call is inlined, and on
    CPU they dominate compile time. The bias of flooring a float32 uniform is
    about count / 2^24, negligible for populations of thousands.

    Args:
      uniform: float32 array in [0, 1).
      count: int, static or traced, >= 1.

    Returns:
      int32 array of uniform's shape, in [0, count).
    """
    count = jnp.asarray(count, jnp.int32)
    index = jnp.floor(uniform * count.astype(jnp.float32)).astype(jnp.int32)
    return jnp.minimum(index, count - 1)


def draw_distinct_indices(key: Array, population_size: int, count: int) -> Array:
    """Draws, for each member i, `count` distinct indices in [0, P), all != i.

    Each row is a uniform draw without replacement from {0..P-1} minus {i}:
    the j-th index is uniform over the P - 1 - j integers not yet excluded.

    Args:
      key: a typed PRNG key.
      population_size: P, static.
      count: k, static, k <= P - 1.

    Returns:
      [P, k] int32 indices.
    """
    uniforms = jax.random.uniform(key, (population_size, count))
    excluded = jnp.arange(population_size, dtype=jnp.int32)[:, None]
    for column in range(count):
        draws = uniform_index(uniforms[:, column], population_size - 1 - column)
        chosen = _skip_excluded(draws, excluded)
        excluded = jnp.concatenate([excluded, chosen[:, None]], axis=1)
    return excluded[:, 1:]


def rank_order(fitness: Array) -> Array:
    """Indices that sort fitness best (lowest) first, NaN last. [P] int32."""
    return jnp.argsort(jnp.where(jnp.isnan(fitness), jnp.inf, fitness))


def _best_index(fitness: Array) -> Array:
    return jnp.argmin(jnp.where(jnp.isnan(fitness), jnp.inf, fitness))


def _column(weight: Array | float, population_size: int) -> Array:
    """F as a [P, 1] column, so it scales each member's difference vector."""
    return jnp.broadcast_to(jnp.asarray(weight, jnp.float32),
                            (population_size,))[:, None]


def rand_1(key, population, fitness, weight, params, archive, archive_size):
    """DE/rand/1: v_i = x_r1 + F (x_r2 - x_r3) (Storn & Price 1997)."""
    del fitness, params, archive, archive_size
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 3)
    scale = _column(weight, size)
    return population[r[:, 0]] + scale * (population[r[:, 1]] - population[r[:, 2]])


def rand_2(key, population, fitness, weight, params, archive, archive_size):
    """DE/rand/2: v_i = x_r1 + F (x_r2 - x_r3) + F (x_r4 - x_r5)."""
    del fitness, params, archive, archive_size
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 5)
    scale = _column(weight, size)
    return (population[r[:, 0]]
            + scale * (population[r[:, 1]] - population[r[:, 2]])
            + scale * (population[r[:, 3]] - population[r[:, 4]]))


def best_1(key, population, fitness, weight, params, archive, archive_size):
    """DE/best/1: v_i = x_best + F (x_r1 - x_r2)."""
    del params, archive, archive_size
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 2)
    scale = _column(weight, size)
    best = population[_best_index(fitness)][None, :]
    return best + scale * (population[r[:, 0]] - population[r[:, 1]])


def best_2(key, population, fitness, weight, params, archive, archive_size):
    """DE/best/2: v_i = x_best + F (x_r1 - x_r2) + F (x_r3 - x_r4)."""
    del params, archive, archive_size
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 4)
    scale = _column(weight, size)
    best = population[_best_index(fitness)][None, :]
    return (best
            + scale * (population[r[:, 0]] - population[r[:, 1]])
            + scale * (population[r[:, 2]] - population[r[:, 3]]))


def current_to_best_1(key, population, fitness, weight, params, archive,
                      archive_size):
    """DE/current-to-best/1: v_i = x_i + F (x_best - x_i) + F (x_r1 - x_r2)."""
    del params, archive, archive_size
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 2)
    scale = _column(weight, size)
    best = population[_best_index(fitness)][None, :]
    return (population + scale * (best - population)
            + scale * (population[r[:, 0]] - population[r[:, 1]]))


def current_to_pbest_indices(key: Array, fitness: Array, pbest_fraction: Any,
                             archive_size: Array) -> tuple[Array, Array, Array]:
    """Draws JADE's donors for current-to-pbest/1.

    Args:
      key: a typed PRNG key.
      fitness: [P] float, lower is better.
      pbest_fraction: p in (0, 1], traced; x_pbest is uniform among the
        max(1, round(p P)) best members.
      archive_size: [] int32, valid rows of the archive (<= its capacity).

    Returns:
      (pbest [P], r1 [P], r2 [P]) int32. r1 in [0, P), r1 != i. r2 indexes the
      union concatenate([population, archive]) in [0, P + archive_size), with
      r2 != i and r2 != r1.
    """
    size = fitness.shape[0]
    top = jnp.maximum(1, jnp.round(pbest_fraction * size)).astype(jnp.int32)
    top = jnp.minimum(top, size)
    uniforms = jax.random.uniform(key, (size, 3))
    pbest = rank_order(fitness)[uniform_index(uniforms[:, 0], top)]
    pbest = pbest.astype(jnp.int32)
    members = jnp.arange(size, dtype=jnp.int32)
    r1 = _skip_excluded(uniform_index(uniforms[:, 1], size - 1), members[:, None])
    union_size = size + archive_size.astype(jnp.int32)
    draws = uniform_index(uniforms[:, 2], union_size - 2)
    r2 = _skip_excluded(draws, jnp.stack([members, r1], axis=1))
    return pbest, r1, r2


def current_to_pbest_1(key, population, fitness, weight, params, archive,
                       archive_size):
    """DE/current-to-pbest/1 (JADE): v_i = x_i + F (x_pbest - x_i) + F (x_r1 - x~_r2).

    With an empty (or zero-capacity) archive x~_r2 comes from the population
    alone, which is JADE without archive.
    """
    size = population.shape[0]
    pbest, r1, r2 = current_to_pbest_indices(
        key, fitness, params.pbest_fraction, archive_size)
    union = jnp.concatenate([population, archive], axis=0)
    scale = _column(weight, size)
    return (population + scale * (population[pbest] - population)
            + scale * (population[r1] - union[r2]))


# Registry: name -> operator. A new mutation is one function plus one line here
# and one line in MIN_POPULATION_SIZE.
MUTATIONS: dict[str, MutationFn] = {
    "rand/1": rand_1,
    "rand/2": rand_2,
    "best/1": best_1,
    "best/2": best_2,
    "current-to-best/1": current_to_best_1,
    "current-to-pbest/1": current_to_pbest_1,
}

# Smallest P leaving enough members besides i for the distinct donors.
MIN_POPULATION_SIZE: dict[str, int] = {
    "rand/1": 4,
    "rand/2": 6,
    "best/1": 3,
    "best/2": 5,
    "current-to-best/1": 3,
    "current-to-pbest/1": 3,
}

# Mutations that read the JADE archive.
ARCHIVE_MUTATIONS = frozenset({"current-to-pbest/1"})
