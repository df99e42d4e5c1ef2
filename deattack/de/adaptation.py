"""Control-parameter adaptation: where each member's F and CR come from.

An optax-like triple of pure functions per scheme, for one problem:

  init(population_size, params) -> AdaptState
  sample(key, state, params) -> (F [P], CR [P])
  update(state, F, CR, improved [P] bool, gain [P], params) -> AdaptState

`improved` marks members whose trial replaced them; `gain` >= 0 is the fitness
improvement (target - trial, 0 where not improved or not finite).

  constant  F and CR from DEParams, the identity update (Storn & Price 1997).
  jde       per-member F, CR, redrawn with probabilities tau_1, tau_2 and kept
            only when the trial succeeds (Brest et al. 2006).
  jade      F ~ Cauchy(mu_F, 0.1) truncated to (0, 1], CR ~ N(mu_CR, 0.1)
            clipped to [0, 1]; mu_CR moves toward the mean and mu_F toward the
            Lehmer mean of the successful values at rate c (Zhang & Sanderson
            2009).
  shade     a memory of H = P pairs (M_F, M_CR); each member samples around a
            random entry, and entry k is overwritten by the gain-weighted
            Lehmer mean of successful F and gain-weighted mean of successful CR
            (Tanabe & Fukunaga 2013).

References:
  J. Brest, S. Greiner, B. Boskovic, M. Mernik, V. Zumer. Self-adapting control
    parameters in differential evolution. IEEE TEVC 10(6), 2006.
  J. Zhang, A. C. Sanderson. JADE: adaptive differential evolution with optional
    external archive. IEEE TEVC 13(5), 2009.
  R. Tanabe, A. Fukunaga. Success-history based parameter adaptation for
    differential evolution. IEEE CEC 2013.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from deattack.de.sampling import uniform_index

Array = jax.Array
AdaptState = Any


class Adaptation(NamedTuple):
    """The three pure functions of one adaptation scheme (like optax's
    GradientTransformation)."""

    init: Callable[..., AdaptState]
    sample: Callable[..., tuple[Array, Array]]
    update: Callable[..., AdaptState]


def _full(value, population_size: int) -> Array:
    return jnp.full((population_size,), value, jnp.float32)


def truncated_cauchy(uniform: Array, location: Array, scale) -> Array:
    """Cauchy(location, scale) conditioned on > 0, then clipped to <= 1.

    JADE and SHADE redraw non-positive F until positive; sampling the inverse
    CDF on the part of (0, 1) that maps above 0 gives the same distribution
    without a data-dependent loop.

    Args:
      uniform: [P] float32 in [0, 1), one per member.
      location: mu_F, scalar or [P].
      scale: the Cauchy scale (0.1 in the papers).

    Returns:
      [P] float32 F in (0, 1].
    """
    cdf_at_zero = 0.5 + jnp.arctan(-location / scale) / jnp.pi
    # Keep strictly inside (cdf_at_zero, 1) so tan stays finite and F > 0.
    tiny = 1e-6
    quantile = cdf_at_zero + (1.0 - cdf_at_zero) * uniform
    quantile = jnp.clip(quantile, cdf_at_zero + tiny, 1.0 - tiny)
    draw = location + scale * jnp.tan(jnp.pi * (quantile - 0.5))
    return jnp.clip(draw, tiny, 1.0)


def clipped_normal(uniform: Array, mean: Array, std) -> Array:
    """N(mean, std) by inverse CDF of `uniform`, clipped to [0, 1] (CR)."""
    # Keep away from 0, where ndtri is -inf (clipped anyway, but NaN-free).
    standard = jax.scipy.special.ndtri(jnp.clip(uniform, 1e-7, 1.0 - 1e-7))
    return jnp.clip(mean + std * standard, 0.0, 1.0)


def _lehmer_mean(values: Array, weights: Array) -> Array:
    """sum w v^2 / sum w v; favours large F, which keeps exploration alive."""
    return jnp.sum(weights * values**2) / jnp.maximum(
        jnp.sum(weights * values), 1e-12)


# --- constant -----------------------------------------------------------------


def constant_init(population_size: int, params) -> AdaptState:
    del population_size, params
    return ()


def constant_sample(key: Array, state: AdaptState, params,
                    population_size: int) -> tuple[Array, Array]:
    del key, state
    return (_full(params.differential_weight, population_size),
            _full(params.crossover_rate, population_size))


def constant_update(state, weight, rate, improved, gain, params) -> AdaptState:
    del weight, rate, improved, gain, params
    return state


# --- jDE ----------------------------------------------------------------------


@struct.dataclass
class JDEState:
    """Per-member parameters that produced the current member.

    Attributes:
      differential_weight: [P] float32, F_i.
      crossover_rate: [P] float32, CR_i.
    """

    differential_weight: Array
    crossover_rate: Array


def jde_init(population_size: int, params) -> JDEState:
    return JDEState(_full(params.differential_weight, population_size),
                    _full(params.crossover_rate, population_size))


def jde_sample(key: Array, state: JDEState, params,
               population_size: int) -> tuple[Array, Array]:
    del population_size
    # One draw (each threefry call costs compile time): columns are the two
    # redraw coins, the new F and the new CR.
    uniforms = jax.random.uniform(key, state.differential_weight.shape + (4,))
    redraw_weight = uniforms[:, 0] < params.jde_tau_f
    redraw_rate = uniforms[:, 1] < params.jde_tau_cr
    new_weight = params.jde_f_lower + uniforms[:, 2] * params.jde_f_upper
    new_rate = uniforms[:, 3]
    return (jnp.where(redraw_weight, new_weight, state.differential_weight),
            jnp.where(redraw_rate, new_rate, state.crossover_rate))


def jde_update(state: JDEState, weight, rate, improved, gain,
               params) -> JDEState:
    del gain, params
    return JDEState(
        differential_weight=jnp.where(improved, weight, state.differential_weight),
        crossover_rate=jnp.where(improved, rate, state.crossover_rate))


# --- JADE ---------------------------------------------------------------------


@struct.dataclass
class JADEState:
    """Attributes: weight_mean: [] mu_F. rate_mean: [] mu_CR."""

    weight_mean: Array
    rate_mean: Array


def jade_init(population_size: int, params) -> JADEState:
    del population_size
    return JADEState(jnp.asarray(params.adaptive_f_init, jnp.float32),
                     jnp.asarray(params.adaptive_cr_init, jnp.float32))


def jade_sample(key: Array, state: JADEState, params,
                population_size: int) -> tuple[Array, Array]:
    uniforms = jax.random.uniform(key, (population_size, 2))
    weight = truncated_cauchy(uniforms[:, 0], state.weight_mean,
                              params.adaptive_f_scale)
    rate = clipped_normal(uniforms[:, 1], state.rate_mean,
                          params.adaptive_cr_scale)
    return weight, rate


def jade_update(state: JADEState, weight, rate, improved, gain,
                params) -> JADEState:
    del gain
    success = improved.astype(jnp.float32)
    count = jnp.sum(success)
    any_success = count > 0
    rate_mean = jnp.sum(success * rate) / jnp.maximum(count, 1.0)
    weight_mean = _lehmer_mean(weight, success)
    c = params.jade_c
    # No success this generation: the means stay (the paper's sets are empty).
    return JADEState(
        weight_mean=jnp.where(any_success,
                              (1 - c) * state.weight_mean + c * weight_mean,
                              state.weight_mean),
        rate_mean=jnp.where(any_success,
                            (1 - c) * state.rate_mean + c * rate_mean,
                            state.rate_mean))


# --- SHADE --------------------------------------------------------------------


@struct.dataclass
class SHADEState:
    """Success-history memory.

    Attributes:
      weight_memory: [H] float32, M_F.
      rate_memory: [H] float32, M_CR.
      index: [] int32, k, the entry the next successful generation overwrites.
    """

    weight_memory: Array
    rate_memory: Array
    index: Array


def shade_init(population_size: int, params) -> SHADEState:
    # H = P as in the paper's experiments; static, so the memory has a fixed shape.
    return SHADEState(_full(params.adaptive_f_init, population_size),
                      _full(params.adaptive_cr_init, population_size),
                      jnp.zeros((), jnp.int32))


def shade_sample(key: Array, state: SHADEState, params,
                 population_size: int) -> tuple[Array, Array]:
    uniforms = jax.random.uniform(key, (population_size, 3))
    slots = uniform_index(uniforms[:, 0], state.weight_memory.shape[0])
    weight = truncated_cauchy(uniforms[:, 1], state.weight_memory[slots],
                              params.adaptive_f_scale)
    rate = clipped_normal(uniforms[:, 2], state.rate_memory[slots],
                          params.adaptive_cr_scale)
    return weight, rate


def shade_update(state: SHADEState, weight, rate, improved, gain,
                 params) -> SHADEState:
    del params
    success = improved.astype(jnp.float32)
    count = jnp.sum(success)
    weighted_gain = success * gain
    total_gain = jnp.sum(weighted_gain)
    # Equal weights when every success is a tie (gain 0), e.g. on a plateau;
    # the paper's weights are undefined there.
    weights = jnp.where(total_gain > 0, weighted_gain / jnp.maximum(total_gain, 1e-30),
                        success / jnp.maximum(count, 1.0))
    new_weight = _lehmer_mean(weight, weights)
    new_rate = jnp.sum(weights * rate)
    any_success = count > 0
    memory_size = state.weight_memory.shape[0]
    at_index = jnp.arange(memory_size) == state.index
    write = at_index & any_success
    return SHADEState(
        weight_memory=jnp.where(write, new_weight, state.weight_memory),
        rate_memory=jnp.where(write, new_rate, state.rate_memory),
        index=jnp.where(any_success, (state.index + 1) % memory_size, state.index),
    )


# Registry: name -> scheme (three functions plus one line here).
ADAPTATIONS: dict[str, Adaptation] = {
    "constant": Adaptation(constant_init, constant_sample, constant_update),
    "jde": Adaptation(jde_init, jde_sample, jde_update),
    "jade": Adaptation(jade_init, jade_sample, jade_update),
    "shade": Adaptation(shade_init, shade_sample, shade_update),
}
