"""Crossover operators of differential evolution, for one problem.

  none  trial = mutant: the one-pixel-attack setting (Su et al. 2019), CR = 1.
  bin   binomial: each gene comes from the mutant with probability CR, and gene
        j_rand always does, so a trial never equals its target
        (Storn & Price 1997). Expected mutant genes: 1 + CR (D - 1).
  exp   exponential: the mutant supplies a contiguous circular run of L genes
        from a random start, P(L >= l) = CR^(l - 1), L <= D (Storn & Price 1997;
        Price, Storn & Lampinen 2005). Expected L = (1 - CR^D) / (1 - CR).

References:
  R. Storn, K. Price. Differential evolution - a simple and efficient heuristic
    for global optimization over continuous spaces. J. Global Optim. 11, 1997.
  K. Price, R. Storn, J. Lampinen. Differential Evolution: A Practical Approach
    to Global Optimization. Springer, 2005.
  J. Su, D. V. Vargas, K. Sakurai. One pixel attack for fooling deep neural
    networks. IEEE TEVC 23(5), 2019.

One signature: (key, targets [P, D], mutants [P, D], rate CR ([P] or scalar))
-> trials [P, D].
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from deattack.de.sampling import uniform_index

Array = jax.Array
CrossoverFn = Callable[[Array, Array, Array, Array], Array]


def _rate_column(rate: Array | float, population_size: int) -> Array:
    """CR as a [P, 1] column, one rate per member."""
    return jnp.broadcast_to(jnp.asarray(rate, jnp.float32),
                            (population_size,))[:, None]


def none(key: Array, targets: Array, mutants: Array, rate) -> Array:
    """No crossover: the trial is the mutant (Su et al. 2019)."""
    del key, targets, rate
    return mutants


def binomial_mask(key: Array, population_size: int, num_dims: int, rate) -> Array:
    """[P, D] bool, True where the trial takes the mutant's gene (bin)."""
    # One draw: D coins and, in the last column, the forced gene j_rand.
    uniforms = jax.random.uniform(key, (population_size, num_dims + 1))
    coins = uniforms[:, :num_dims]
    forced = uniform_index(uniforms[:, num_dims], num_dims)
    genes = jnp.arange(num_dims)[None, :]
    return (coins < _rate_column(rate, population_size)) | (genes == forced[:, None])


def binomial(key: Array, targets: Array, mutants: Array, rate) -> Array:
    """Binomial crossover with j_rand (at least one gene from the mutant)."""
    mask = binomial_mask(key, *targets.shape, rate)
    return jnp.where(mask, mutants, targets)


def exponential_mask(key: Array, population_size: int, num_dims: int,
                     rate) -> Array:
    """[P, D] bool, True on the circular run of genes taken from the mutant (exp).

    The run starts at a uniform gene and continues while successive coins come
    up below CR, so P(L >= l) = CR^(l - 1), capped at D.
    """
    # One draw: the start gene in column 0, D - 1 continuation coins after it.
    uniforms = jax.random.uniform(key, (population_size, num_dims))
    start = uniform_index(uniforms[:, 0], num_dims)
    coins = uniforms[:, 1:]
    continues = (coins < _rate_column(rate, population_size)).astype(jnp.int32)
    # Length = 1 + number of leading successes: cumprod zeroes after a failure.
    length = 1 + jnp.sum(jnp.cumprod(continues, axis=1), axis=1)
    genes = jnp.arange(num_dims)[None, :]
    offset = jnp.mod(genes - start[:, None], num_dims)
    return offset < length[:, None]


def exponential(key: Array, targets: Array, mutants: Array, rate) -> Array:
    """Exponential (two-point circular) crossover."""
    mask = exponential_mask(key, *targets.shape, rate)
    return jnp.where(mask, mutants, targets)


# Registry: name -> operator (one function plus one line here).
CROSSOVERS: dict[str, CrossoverFn] = {
    "none": none,
    "bin": binomial,
    "exp": exponential,
}
