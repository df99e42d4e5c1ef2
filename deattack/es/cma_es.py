"""CMA-ES for B independent box-constrained problems: a non-DE baseline of the operator study.

The standard (mu/mu_w, lambda)-CMA-ES of Hansen, "The CMA Evolution Strategy: A
Tutorial" (arXiv:1604.00772), with its default strategy parameters (Table 1) and
cumulative step-size adaptation, batched over B problems like the DE engine
(deattack.de.engine): each problem has its own distribution, box, PRNG key and
generation counter; `init`, `ask`, `tell`, `step` and `run` are pure and jit-able,
with the same fitness function (candidates [B, P, D], context, active [B]) ->
(fitness [B, P], solved [B, P]) and the same `done`, `generation`, `queries`,
`best_member`, `best_fitness`, `key`, `lower`, `upper` fields, so the attack's slot
runner (continuous batching, exact query accounting) drives it unchanged.

It lives beside DE (deattack.es, image-agnostic like deattack.de) and shares DE's
conventions and pieces: the box and the per-dimension bound handling (de/bounds.py),
NaN fitness ranked as +inf and never solving (de/selection.sanitize), the choice of the
best member (de/selection.best_index), and the PRNG rule (generation g draws from
fold_in(key, g), the initial generation from a fixed tag), so a problem's run does not
depend on the batch it shares.

The search runs in the normalised box [0, 1]^D, mapped affinely onto each problem's
[lower, upper]:
  - lambda = population_size: the initial generation and each later one sample,
    evaluate and update once, so a problem costs lambda (generations + 1) queries,
    exactly DE's budget at the same population.
  - Initial mean: the centre of the box (the tutorial's choice when nothing is known
    of the optimum; deterministic, and equally far from every bound, so with
    sigma0 = 0.3 about 90 % of the first samples of each coordinate lie in the box; a
    uniform random mean would often sit near a bound, with many first samples
    repaired onto it). sigma0 = CMAESParams.initial_step_size x the box width (0.3),
    C0 = I.
  - Out-of-box samples are repaired into the box by the problem's per-dimension bound
    handling (the DE operators: clip, reflect, reinit), and the repaired point is what
    is evaluated, reported and learnt from (Lamarckian repair, as evosax's clipping):
    the update equations are the tutorial's with x_k the repaired samples, so the mean
    stays in the box. Learning from the unrepaired samples instead (pycma's bound
    transformation, with its unbiased path statistics) lets the mean drift out of the
    box along a coordinate where the clipped objective is flat, from where it never
    comes back (it stalled sphere and ellipsoid problems in tests/de/test_cma_es.py).
Deviation from the tutorial's 2016 defaults: only the mu = floor(lambda / 2) best
samples get (positive) recombination weights w_i proportional to
ln((lambda + 1) / 2) - ln i; the negative weights of active CMA (its eq. 53) are left
out, as in the classic (mu/mu_w, lambda)-CMA-ES. C is eigendecomposed every generation
(cheap for the attack's D = 5K <= 25).

Example:
    >>> config = CMAESConfig(population_size=12, num_dims=4, max_generations=200)
    >>> def sphere(candidates, context, active):
    ...     del active
    ...     fitness = jnp.sum((candidates - 0.25)**2, axis=-1)
    ...     return fitness, fitness < context[:, None]
    >>> keys = jax.random.split(jax.random.key(0), 3)        # B = 3 problems
    >>> lower, upper = -jnp.ones((3, 4)), jnp.ones((3, 4))
    >>> tolerance = jnp.full((3,), 1e-8)
    >>> state = init(config, CMAESParams(), keys, lower, upper,
    ...              fitness_fn=sphere, context=tolerance)
    >>> run_jit = jax.jit(run, static_argnames=("config", "fitness_fn"))
    >>> state = run_jit(config, CMAESParams(), state, sphere, tolerance)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from deattack.de import bounds as bounds_lib
from deattack.de.engine import FitnessFn, run_while_active
from deattack.de.selection import best_index, sanitize

Array = jax.Array

# fold_in tag of the initial generation, as in the DE engine; later generations use
# 0, 1, 2, ... and int32 generation counts never reach it.
_INIT_TAG = 2**31 - 1
# The least population: one parent (mu = floor(lambda / 2) >= 1).
MIN_POPULATION_SIZE = 2
# Eigenvalues of C are floored here before their square roots and inverses: float32
# eigh can return tiny negative ones for a nearly singular C.
_MIN_EIGENVALUE = 1e-30
# Sweeps of the Jacobi eigensolver (symmetric_eigh).
JACOBI_SWEEPS = 8


class StrategyConstants(NamedTuple):
    """The tutorial's default strategy parameters (Table 1, positive weights only),
    functions of lambda and D alone: Python numbers (hashable, static in jit)."""

    parents: int  # mu = floor(lambda / 2)
    weights: tuple[float, ...]  # w_1 >= ... >= w_mu > 0, sum 1 (mu of them)
    mu_eff: float  # variance-effective selection mass, 1 / sum w_i^2
    c_sigma: float  # learning rate of the step-size path
    d_sigma: float  # step-size damping
    c_c: float  # learning rate of the rank-one path
    c_1: float  # rank-one learning rate
    c_mu: float  # rank-mu learning rate
    chi_n: float  # E||N(0, I)||


def strategy_constants(population_size: int, num_dims: int) -> StrategyConstants:
    """Default weights and learning rates for lambda = population_size, n = num_dims."""
    lam, n = population_size, num_dims
    parents = lam // 2
    raw = math.log((lam + 1) / 2) - np.log(np.arange(1, parents + 1, dtype=np.float64))
    weights = raw / raw.sum()
    mu_eff = float(1.0 / np.sum(weights**2))
    c_sigma = (mu_eff + 2) / (n + mu_eff + 5)
    d_sigma = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)
    alpha_cov = 2.0
    c_1 = alpha_cov / ((n + 1.3)**2 + mu_eff)
    c_mu = min(1 - c_1, alpha_cov * (mu_eff - 2 + 1 / mu_eff) / ((n + 2)**2 + alpha_cov * mu_eff / 2))
    chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))
    return StrategyConstants(parents, tuple(float(w) for w in weights), mu_eff, c_sigma, d_sigma, c_c, c_1, c_mu, chi_n)


@dataclasses.dataclass(frozen=True)
class CMAESConfig:
    """What fixes shapes and code paths; hashable, a static argument of `jax.jit`.

    Attributes:
        population_size: lambda, samples per generation (>= 2).
        num_dims: D, genes per sample.
        bounds: a name in `bounds.BOUNDS` for every dimension, or a tuple of D names:
            how out-of-box samples are repaired before they are evaluated.
        max_generations: generations after the initial one, after which a problem
            stops, solved or not.
    """

    population_size: int
    num_dims: int
    bounds: tuple[str, ...] | str = "clip"
    max_generations: int = 100

    def __post_init__(self):
        if self.population_size < MIN_POPULATION_SIZE:
            raise ValueError(f"population_size={self.population_size} is too small for CMA-ES, "
                             f"which needs at least {MIN_POPULATION_SIZE} samples (mu = lambda // 2 >= 1)")
        if self.num_dims < 1:
            raise ValueError(f"num_dims must be >= 1, got {self.num_dims}")
        if self.max_generations < 0:
            raise ValueError(f"max_generations must be >= 0, got {self.max_generations}")
        names = (self.bounds,) if isinstance(self.bounds, str) else tuple(self.bounds)
        if not isinstance(self.bounds, str):
            object.__setattr__(self, "bounds", names)  # a list would be unhashable
            if len(names) != self.num_dims:
                raise ValueError(f"bounds has {len(names)} names but num_dims={self.num_dims}")
        for name in names:
            if name not in bounds_lib.BOUNDS:
                raise ValueError(f"bounds={name!r} is unknown; known names: {sorted(bounds_lib.BOUNDS)}")

    @property
    def bounds_per_dim(self) -> tuple[str, ...]:
        """The bound-handling name of each of the D dimensions."""
        return bounds_lib.per_dimension(self.bounds, self.num_dims)

    @property
    def constants(self) -> StrategyConstants:
        return strategy_constants(self.population_size, self.num_dims)


@struct.dataclass
class CMAESParams:
    """Traced tunables; changing them never recompiles.

    Attributes:
        initial_step_size: sigma0 as a fraction of the box width, > 0 (0.3).
    """

    initial_step_size: float = 0.3

    def validate(self) -> CMAESParams:
        """Checks concrete values on the host; returns self."""
        value = float(self.initial_step_size)
        if not value > 0 or math.isinf(value):
            raise ValueError(f"initial_step_size={value} must be a finite number > 0")
        return self


@struct.dataclass
class Distribution:
    """One search distribution N(mean, step_size^2 C) per problem, in the normalised
    box [0, 1]^D (leaves with leading axis B in a state, or none for one problem).

    Attributes:
      mean: [D] float32, m, inside the box.
      step_size: [] float32, sigma.
      covariance: [D, D] float32, C (symmetric positive definite).
      eigenvectors: [D, D] float32, B: C = B diag(scales)^2 B^T, columns eigenvectors.
      scales: [D] float32, the square roots of C's eigenvalues (the tutorial's D).
      path_sigma: [D] float32, p_sigma, the conjugate evolution path.
      path_c: [D] float32, p_c, the evolution path of C.
    """

    mean: Array
    step_size: Array
    covariance: Array
    eigenvectors: Array
    scales: Array
    path_sigma: Array
    path_c: Array


@struct.dataclass
class CMAESState:
    """State of B problems; every leaf has leading axis B, so problems can be sliced,
    refilled and sharded alike (the DE state's conventions).

    Attributes:
      distribution: the search distributions (`Distribution`, leaves [B, ...]).
      best_member: [B, D] float32, in the box: the best solved candidate once the
        problem is done, else the lowest-fitness candidate evaluated so far.
      best_fitness: [B] float32, its fitness (+inf before any finite one).
      generation: [B] int32, generations run after the initial one.
      done: [B] bool, some candidate solved the problem; its state is frozen.
      queries: [B] int32, evaluations charged: lambda at init, lambda per generation.
      key: [B] typed PRNG keys; generation g draws from fold_in(key, g).
      lower: [B, D] float32, lower bounds of the box.
      upper: [B, D] float32, upper bounds.
    """

    distribution: Distribution
    best_member: Array
    best_fitness: Array
    generation: Array
    done: Array
    queries: Array
    key: Array
    lower: Array
    upper: Array


def _matmul(a: Array, b: Array) -> Array:
    """a [M, K] @ b [K, N], adding the K outer products one at a time, in order.

    XLA:CPU tiles a dot, and a reduction, by the shape of the whole (vmapped) array, so
    their rounding depends on how many problems share the batch, and a problem's run
    would depend on its batch. A loop of elementwise multiply-adds rounds the same for
    any batch size. K is at most max(D, mu) (mu = 200 at the attack's lambda = 400)."""
    def add(index, total):
        column = jax.lax.dynamic_index_in_dim(a, index, axis=1, keepdims=False)
        row = jax.lax.dynamic_index_in_dim(b, index, axis=0, keepdims=False)
        return total + column[:, None] * row[None, :]

    return jax.lax.fori_loop(0, a.shape[1], add, jnp.zeros((a.shape[0], b.shape[1]), a.dtype))


def _matvec(a: Array, v: Array) -> Array:
    """a [M, K] @ v [K], batch-size independent like _matmul."""
    return _matmul(a, v[:, None])[:, 0]


def _norm(v: Array) -> Array:
    """||v|| of v [K], batch-size independent like _matmul."""
    return jnp.sqrt(_matmul(v[None, :], v[:, None])[0, 0])


def symmetric_eigh(matrix: Array, sweeps: int = JACOBI_SWEEPS) -> tuple[Array, Array]:
    """Eigenvalues [D] (unsorted) and eigenvectors [D, D] (columns) of a symmetric matrix
    [D, D], by cyclic Jacobi rotations (Golub & Van Loan, Matrix Computations, 8.5).

    Not jnp.linalg.eigh: on CPU that is LAPACK's syevd, whose last bits differ with the
    batch it runs in (the same matrix at another slot of a vmapped batch), which would
    make a problem's run depend on its batch. Jacobi uses only +, *, / and sqrt, exactly
    rounded elementwise, in a fixed order: `sweeps` sweeps over the D (D - 1) / 2 pairs
    (a fixed count, so that no problem's sweeps depend on another's convergence; cyclic
    Jacobi converges quadratically, and 8 sweeps reach float32 accuracy for D <= 25).
    """
    size = matrix.shape[0]
    rows, columns = np.triu_indices(size, 1)
    if rows.size == 0:
        return jnp.diagonal(matrix), jnp.ones_like(matrix)
    first = jnp.asarray(np.tile(rows, sweeps), jnp.int32)
    second = jnp.asarray(np.tile(columns, sweeps), jnp.int32)

    def rotate(index, carry):
        a, vectors = carry
        p, q = first[index], second[index]
        a_pp, a_qq, a_pq = a[p, p], a[q, q], a[p, q]
        coupled = a_pq != 0
        theta = (a_qq - a_pp) / (2.0 * jnp.where(coupled, a_pq, 1.0))
        tangent = jnp.where(theta >= 0, 1.0, -1.0) / (jnp.abs(theta) + jnp.sqrt(theta * theta + 1.0))
        tangent = jnp.where(coupled, tangent, 0.0)
        cosine = 1.0 / jnp.sqrt(tangent * tangent + 1.0)
        sine = tangent * cosine
        # A <- J^T A J and V <- V J, J the rotation in the (p, q) plane that zeroes a_pq.
        row_p, row_q = a[p], a[q]
        a = a.at[p].set(cosine * row_p - sine * row_q).at[q].set(sine * row_p + cosine * row_q)
        column_p, column_q = a[:, p], a[:, q]
        a = a.at[:, p].set(cosine * column_p - sine * column_q).at[:, q].set(sine * column_p + cosine * column_q)
        vector_p, vector_q = vectors[:, p], vectors[:, q]
        vectors = vectors.at[:, p].set(cosine * vector_p - sine * vector_q)
        vectors = vectors.at[:, q].set(sine * vector_p + cosine * vector_q)
        return a, vectors

    a, vectors = jax.lax.fori_loop(0, first.shape[0], rotate, (matrix, jnp.eye(size, dtype=matrix.dtype)))
    return jnp.diagonal(a), vectors


def initial_distribution(num_dims: int, mean: Array, step_size: Array) -> Distribution:
    """N(mean, step_size^2 I) with zero paths, for one problem. mean [D] (normalised)."""
    eye = jnp.eye(num_dims, dtype=jnp.float32)
    zeros = jnp.zeros((num_dims,), jnp.float32)
    return Distribution(mean=jnp.asarray(mean, jnp.float32), step_size=jnp.asarray(step_size, jnp.float32),
                        covariance=eye, eigenvectors=eye, scales=jnp.ones((num_dims,), jnp.float32),
                        path_sigma=zeros, path_c=zeros)


def update_distribution(constants: StrategyConstants, distribution: Distribution, samples: Array,
                        fitness: Array, update_index: Array) -> Distribution:
    """One CMA-ES update of one problem's distribution (the tutorial's Section 4 steps).

    Args:
      constants: from `strategy_constants`.
      distribution: the distribution the samples were drawn from (unbatched leaves).
      samples: [lambda, D] float32, x_k, drawn as m + sigma N(0, C) and repaired into
        the normalised box.
      fitness: [lambda] float32, lower is better, no NaN (rank ties: lower index first).
      update_index: int32 [], g: 0 for the first update of a run, then 1, 2, ...;
        the h_sigma test divides ||p_sigma|| by sqrt(1 - (1 - c_sigma)^(2 (g + 1))).

    Returns:
      The next distribution, with C's eigendecomposition refreshed.
    """
    c = constants
    weights = jnp.asarray(c.weights, jnp.float32)
    n = samples.shape[-1]
    selected = jnp.argsort(fitness, stable=True)[: c.parents]
    steps = (samples[selected] - distribution.mean[None, :]) / distribution.step_size  # y_{i:lambda} [mu, D]
    step_w = _matvec(steps.T, weights)  # y_w [D]
    mean = distribution.mean + distribution.step_size * step_w  # c_m = 1
    # C^(-1/2) y_w = B diag(1 / scales) B^T y_w.
    whitened = _matvec(distribution.eigenvectors,
                       _matvec(distribution.eigenvectors.T, step_w) / distribution.scales)
    path_sigma = ((1 - c.c_sigma) * distribution.path_sigma
                  + math.sqrt(c.c_sigma * (2 - c.c_sigma) * c.mu_eff) * whitened)
    path_sigma_norm = _norm(path_sigma)
    exponent = 2.0 * (jnp.asarray(update_index, jnp.float32) + 1.0)
    correction = jnp.sqrt(1.0 - jnp.power(jnp.float32(1 - c.c_sigma), exponent))
    h_sigma = path_sigma_norm / correction < (1.4 + 2 / (n + 1)) * c.chi_n
    # h_sigma enters through jnp.where, not as a 0/1 factor: XLA reassociates products
    # differently for different batch sizes, and a problem's run must not depend on its batch.
    path_c = (1 - c.c_c) * distribution.path_c + jnp.where(
        h_sigma, math.sqrt(c.c_c * (2 - c.c_c) * c.mu_eff) * step_w, 0.0)
    rank_mu = _matmul((steps * weights[:, None]).T, steps)  # sum_i w_i y_i y_i^T
    # 1 - c_1 - c_mu sum(w) + c_1 delta(h_sigma), delta(h_sigma) = (1 - h_sigma) c_c (2 - c_c).
    decay_kept = 1.0 - c.c_1 - c.c_mu * sum(c.weights)
    decay = jnp.where(h_sigma, decay_kept, decay_kept + c.c_1 * c.c_c * (2 - c.c_c))
    covariance = (decay * distribution.covariance + c.c_1 * jnp.outer(path_c, path_c)
                  + c.c_mu * rank_mu)
    covariance = 0.5 * (covariance + covariance.T)  # exactly symmetric
    step_size = distribution.step_size * jnp.exp((c.c_sigma / c.d_sigma) * (path_sigma_norm / c.chi_n - 1.0))
    eigenvalues, eigenvectors = symmetric_eigh(covariance)
    return Distribution(mean=mean, step_size=step_size, covariance=covariance, eigenvectors=eigenvectors,
                        scales=jnp.sqrt(jnp.maximum(eigenvalues, _MIN_EIGENVALUE)),
                        path_sigma=path_sigma, path_c=path_c)


def active(config: CMAESConfig, state: CMAESState) -> Array:
    """[B] bool: problems neither solved nor out of generations."""
    return ~state.done & (state.generation < config.max_generations)


def _sample_one(config: CMAESConfig, key: Array, tag: Array, distribution: Distribution, lower: Array,
                upper: Array) -> tuple[Array, Array]:
    """One problem's (candidates [lambda, D] in [lower, upper], the same samples [lambda, D]
    in the normalised box)."""
    sample_key, bounds_key = jax.random.split(jax.random.fold_in(key, tag))
    normal = jax.random.normal(sample_key, (config.population_size, config.num_dims))
    steps = _matmul(normal * distribution.scales[None, :], distribution.eigenvectors.T)  # y_k = B D z_k
    samples = distribution.mean[None, :] + distribution.step_size * steps
    zeros = jnp.zeros((config.num_dims,), jnp.float32)
    repaired = bounds_lib.apply_per_dimension(config.bounds_per_dim, bounds_key, samples, zeros,
                                              jnp.ones((config.num_dims,), jnp.float32))
    candidates = lower[None, :] + repaired * (upper - lower)[None, :]
    return jnp.clip(candidates, lower[None, :], upper[None, :]), repaired


def _update_one(config: CMAESConfig, state: CMAESState, candidates: Array, fitness: Array, solved: Array,
                samples: Array, update_index: Array) -> CMAESState:
    """Learns from one generation of one problem; charges it lambda queries."""
    fitness, solved = sanitize(fitness, solved)
    distribution = update_distribution(config.constants, state.distribution, samples, fitness, update_index)
    best = best_index(fitness, solved)
    # A solving candidate is kept even if an earlier unsolved one had lower fitness, so a
    # done problem's best_member is its solution.
    improved = solved[best] | (fitness[best] < state.best_fitness)
    return state.replace(
        distribution=distribution,
        best_member=jnp.where(improved, candidates[best], state.best_member),
        best_fitness=jnp.where(improved, fitness[best], state.best_fitness),
        done=jnp.any(solved),
        queries=state.queries + config.population_size,
    )


def init(config: CMAESConfig, params: CMAESParams, key: Array, lower: Array, upper: Array,
         mean: Array | None = None, *, fitness_fn: FitnessFn, context: Any) -> CMAESState:
    """Samples, evaluates and learns from the initial generation of B problems.

    Args:
      config: static configuration.
      params: traced tunables (sigma0).
      key: [B] typed PRNG keys, one per problem.
      lower: [B, D] lower bounds of each problem's box.
      upper: [B, D] upper bounds.
      mean: optional [B, D] initial means in the box; None is the box's centre.
      fitness_fn, context: as in deattack.de.init.

    Returns:
      A CMAESState at generation 0 with queries = lambda.
    """
    lower = jnp.asarray(lower, jnp.float32)
    upper = jnp.asarray(upper, jnp.float32)
    num_problems, dims = lower.shape
    if mean is None:
        normalised = jnp.full((num_problems, dims), 0.5, jnp.float32)
    else:
        normalised = (jnp.asarray(mean, jnp.float32) - lower) / (upper - lower)
    step_size = jnp.broadcast_to(jnp.asarray(params.initial_step_size, jnp.float32), (num_problems,))
    distribution = jax.vmap(lambda m, s: initial_distribution(dims, m, s))(normalised, step_size)
    state = CMAESState(
        distribution=distribution,
        best_member=lower + normalised * (upper - lower),
        best_fitness=jnp.full((num_problems,), jnp.inf, jnp.float32),
        generation=jnp.zeros((num_problems,), jnp.int32),
        done=jnp.zeros((num_problems,), bool),
        queries=jnp.zeros((num_problems,), jnp.int32),
        key=key, lower=lower, upper=upper)
    tag = jnp.full((num_problems,), _INIT_TAG, jnp.int32)
    candidates, samples = jax.vmap(functools.partial(_sample_one, config))(key, tag, distribution, lower, upper)
    fitness, solved = fitness_fn(candidates, context, jnp.ones((num_problems,), bool))
    first = jnp.zeros((num_problems,), jnp.int32)
    return jax.vmap(lambda s, c, f, v, x, g: _update_one(config, s, c, f, v, x, g))(
        state, candidates, fitness, solved, samples, first)


def ask(config: CMAESConfig, params: CMAESParams, state: CMAESState) -> tuple[Array, Array]:
    """Samples generation `state.generation` of every problem.

    Returns:
      (candidates [B, lambda, D] inside the box, to evaluate; samples [B, lambda, D],
      the same points in the normalised box [0, 1]^D, to pass to `tell`).
    """
    del params  # sigma0 only matters at init
    return jax.vmap(functools.partial(_sample_one, config))(
        state.key, state.generation, state.distribution, state.lower, state.upper)


def _tell_one(config: CMAESConfig, state: CMAESState, candidates, fitness, solved, samples) -> CMAESState:
    new = _update_one(config, state, candidates, fitness, solved, samples, state.generation + 1)
    new = new.replace(generation=state.generation + 1)
    # Solved or exhausted problems freeze and are charged nothing (typed keys do not go
    # through jnp.where; the key never changes).
    is_active = ~state.done & (state.generation < config.max_generations)
    frozen = jax.tree.map(lambda n, o: jnp.where(is_active, n, o), new.replace(key=None), state.replace(key=None))
    return frozen.replace(key=state.key)


def tell(config: CMAESConfig, params: CMAESParams, state: CMAESState, candidates: Array, fitness: Array,
         solved: Array, samples: Array) -> CMAESState:
    """Updates the distributions, best, done, queries and generation.

    Problems that were done, or had run config.max_generations, before this call are
    left unchanged.

    Args:
      config, params: as in `init`.
      state: the state `ask` was called with.
      candidates: [B, lambda, D] from `ask`.
      fitness: [B, lambda] float32 of the candidates (NaN counts as +inf).
      solved: [B, lambda] bool.
      samples: [B, lambda, D] from `ask`.
    """
    del params
    return jax.vmap(lambda *a: _tell_one(config, *a))(state, candidates, fitness, solved, samples)


def step(config: CMAESConfig, params: CMAESParams, state: CMAESState, fitness_fn: FitnessFn,
         context: Any) -> CMAESState:
    """One generation: ask -> evaluate -> tell."""
    candidates, samples = ask(config, params, state)
    fitness, solved = fitness_fn(candidates, context, active(config, state))
    return tell(config, params, state, candidates, fitness, solved, samples)


def run(config: CMAESConfig, params: CMAESParams, state: CMAESState, fitness_fn: FitnessFn, context: Any,
        num_generations: int | Array | None = None) -> CMAESState:
    """Runs generations in a `lax.while_loop` until no problem is active (or for at most
    num_generations), exactly as deattack.de.run."""
    return run_while_active(lambda s: active(config, s), lambda s: step(config, params, s, fitness_fn, context),
                            state, num_generations)
