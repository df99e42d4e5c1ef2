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

Operators that use the space's per-dimension kinds (deattack.de.space), made for
problems whose optimum tends to sit on a lattice cell near other good cells and at
the box's corners (few-pixel attacks: coordinates and saturated colours):

  rand/1-snap        v_i = snap(x_r1 + F (x_r2 - x_r3)): each "extreme" gene moves
                     to its nearer bound with probability rho (DEParams.
                     snap_probability); other genes are rand/1's.
  rand/1-snap-local  with probability lambda (DEParams.local_probability) a local
                     move around a p-best member x_pb (p-best as in JADE):
                       "integer" genes: floor(x_pb,j) + delta_j + 1/2, delta_j
                         uniform in {-1, 0, 1} (the centre of a neighbouring cell),
                       "extreme" genes: with probability rho a random bound
                         (lower or upper, 1/2 each), else x_pb,j,
                       "real" genes: the rand/1-snap mutant's (nothing is known
                         about them, so they keep DE's move);
                     otherwise the rand/1-snap mutant. On a problem with only
                     "real" dimensions both operators are rand/1.
  random             v_i ~ U(lower, upper): uniform resampling of the box. With no
                     crossover and DE's greedy selection this is random search
                     (each trial is an independent uniform draw; selection only
                     decides what the population remembers).

References:
  R. Storn, K. Price. Differential evolution - a simple and efficient heuristic
    for global optimization over continuous spaces. J. Global Optim. 11, 1997.
  J. Zhang, A. C. Sanderson. JADE: adaptive differential evolution with optional
    external archive. IEEE TEVC 13(5), 2009.
  J. Su, D. V. Vargas, K. Sakurai. One pixel attack for fooling deep neural
    networks. IEEE TEVC 23(5), 2019 (rand/1, F = 0.5).

All operators share one signature, so the engine calls them alike:

  (key, population [P, D], fitness [P], weight F ([P] or scalar), params,
   archive [A, D], archive_size [], space: SearchSpace) -> mutants [P, D]

The indices r1, r2, ... are distinct and differ from i; they are drawn on device
without loops over members (`draw_distinct_indices`). Fitness is lower-is-better
and NaN ranks last.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from deattack.de.sampling import uniform_index
from deattack.de.space import SearchSpace

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


def rand_1(key, population, fitness, weight, params, archive, archive_size,
           space):
    """DE/rand/1: v_i = x_r1 + F (x_r2 - x_r3) (Storn & Price 1997)."""
    del fitness, params, archive, archive_size, space
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 3)
    scale = _column(weight, size)
    return population[r[:, 0]] + scale * (population[r[:, 1]] - population[r[:, 2]])


def rand_2(key, population, fitness, weight, params, archive, archive_size,
           space):
    """DE/rand/2: v_i = x_r1 + F (x_r2 - x_r3) + F (x_r4 - x_r5)."""
    del fitness, params, archive, archive_size, space
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 5)
    scale = _column(weight, size)
    return (population[r[:, 0]]
            + scale * (population[r[:, 1]] - population[r[:, 2]])
            + scale * (population[r[:, 3]] - population[r[:, 4]]))


def best_1(key, population, fitness, weight, params, archive, archive_size,
           space):
    """DE/best/1: v_i = x_best + F (x_r1 - x_r2)."""
    del params, archive, archive_size, space
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 2)
    scale = _column(weight, size)
    best = population[_best_index(fitness)][None, :]
    return best + scale * (population[r[:, 0]] - population[r[:, 1]])


def best_2(key, population, fitness, weight, params, archive, archive_size,
           space):
    """DE/best/2: v_i = x_best + F (x_r1 - x_r2) + F (x_r3 - x_r4)."""
    del params, archive, archive_size, space
    size = population.shape[0]
    r = draw_distinct_indices(key, size, 4)
    scale = _column(weight, size)
    best = population[_best_index(fitness)][None, :]
    return (best
            + scale * (population[r[:, 0]] - population[r[:, 1]])
            + scale * (population[r[:, 2]] - population[r[:, 3]]))


def current_to_best_1(key, population, fitness, weight, params, archive,
                      archive_size, space):
    """DE/current-to-best/1: v_i = x_i + F (x_best - x_i) + F (x_r1 - x_r2)."""
    del params, archive, archive_size, space
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
                       archive_size, space):
    """DE/current-to-pbest/1 (JADE): v_i = x_i + F (x_pbest - x_i) + F (x_r1 - x~_r2).

    With an empty (or zero-capacity) archive x~_r2 comes from the population
    alone, which is JADE without archive.
    """
    del space
    size = population.shape[0]
    pbest, r1, r2 = current_to_pbest_indices(
        key, fitness, params.pbest_fraction, archive_size)
    union = jnp.concatenate([population, archive], axis=0)
    scale = _column(weight, size)
    return (population + scale * (population[pbest] - population)
            + scale * (population[r1] - union[r2]))


# fold_in tags of the extra streams of the structured operators; the donors of
# rand/1-snap come from the mutation key itself, so with rho = 0 it is rand/1.
_SNAP_TAG = 1
_LOCAL_TAG = 2


def snap_to_bounds(values: Array, space: SearchSpace, uniforms: Array,
                   probability) -> Array:
    """Moves each "extreme" gene to its nearer bound where uniforms < probability.

    Args:
      values: [P, D] genes (may lie outside the box: then the violated bound is
        the nearer one).
      space: the box and kinds.
      uniforms: [P, D] in [0, 1), one coin per gene.
      probability: rho in [0, 1].

    Returns:
      [P, D]: snapped genes are exactly lower or upper; others unchanged.
    """
    middle = 0.5 * (space.lower + space.upper)[None, :]
    nearer = jnp.where(values < middle, space.lower[None, :], space.upper[None, :])
    snap = space.extreme[None, :] & (uniforms < probability)
    return jnp.where(snap, nearer, values)


def rand_1_snap(key, population, fitness, weight, params, archive, archive_size,
                space):
    """rand/1, then each "extreme" gene snaps to its nearer bound with probability rho."""
    mutants = rand_1(key, population, fitness, weight, params, archive, archive_size,
                     space)
    uniforms = jax.random.uniform(jax.random.fold_in(key, _SNAP_TAG), mutants.shape)
    return snap_to_bounds(mutants, space, uniforms, params.snap_probability)


def local_moves(key: Array, population: Array, fitness: Array, params,
                space: SearchSpace) -> tuple[Array, Array]:
    """rand/1-snap-local's local moves and which members make them.

    One uniform draw [P, 2 + 3D]: column 0 the local coin (< lambda), column 1 the
    p-best choice, then D step draws (delta = floor(3 u) - 1), D redraw coins
    (< rho) and D bound choices (< 1/2: lower).

    Returns:
      (moves [P, D], local [P] bool); "real" genes of the moves are x_pb's (the
      operator replaces them by the DE mutant's).
    """
    size, dims = population.shape
    uniforms = jax.random.uniform(key, (size, 2 + 3 * dims))
    local = uniforms[:, 0] < params.local_probability
    top = jnp.maximum(1, jnp.round(params.pbest_fraction * size)).astype(jnp.int32)
    top = jnp.minimum(top, size)
    pbest = rank_order(fitness)[uniform_index(uniforms[:, 1], top)]
    base = population[pbest]
    step = uniform_index(uniforms[:, 2:2 + dims], 3) - 1
    neighbour = jnp.floor(base) + step.astype(jnp.float32) + 0.5
    redraw = uniforms[:, 2 + dims:2 + 2 * dims] < params.snap_probability
    corner = jnp.where(uniforms[:, 2 + 2 * dims:] < 0.5, space.lower[None, :],
                       space.upper[None, :])
    moves = jnp.where(space.integer[None, :], neighbour, base)
    moves = jnp.where(space.extreme[None, :] & redraw, corner, moves)
    return moves, local


def rand_1_snap_local(key, population, fitness, weight, params, archive,
                      archive_size, space):
    """Local moves around p-best members (probability lambda), else rand/1-snap."""
    mutants = rand_1_snap(key, population, fitness, weight, params, archive,
                          archive_size, space)
    moves, local = local_moves(jax.random.fold_in(key, _LOCAL_TAG), population,
                               fitness, params, space)
    structured = space.integer | space.extreme
    return jnp.where(local[:, None] & structured[None, :], moves, mutants)


def random_resample(key, population, fitness, weight, params, archive, archive_size,
                    space):
    """Random search: v_i ~ U(lower, upper), ignoring the population."""
    del fitness, weight, params, archive, archive_size
    uniforms = jax.random.uniform(key, population.shape)
    low, high = space.lower[None, :], space.upper[None, :]
    # low + u (high - low) can round just past high in float32.
    return jnp.clip(low + uniforms * (high - low), low, high)


# Registry: name -> operator. A new mutation is one function plus one line here
# and one line in MIN_POPULATION_SIZE.
MUTATIONS: dict[str, MutationFn] = {
    "rand/1": rand_1,
    "rand/2": rand_2,
    "best/1": best_1,
    "best/2": best_2,
    "current-to-best/1": current_to_best_1,
    "current-to-pbest/1": current_to_pbest_1,
    "rand/1-snap": rand_1_snap,
    "rand/1-snap-local": rand_1_snap_local,
    "random": random_resample,
}

# Smallest P leaving enough members besides i for the distinct donors.
MIN_POPULATION_SIZE: dict[str, int] = {
    "rand/1": 4,
    "rand/2": 6,
    "best/1": 3,
    "best/2": 5,
    "current-to-best/1": 3,
    "current-to-pbest/1": 3,
    "rand/1-snap": 4,
    "rand/1-snap-local": 4,
    "random": 1,
}

# Mutations that read the JADE archive.
ARCHIVE_MUTATIONS = frozenset({"current-to-pbest/1"})
