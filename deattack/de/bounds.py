"""Bound handling: bring trial genes back into the box [lower, upper].

  clip    project onto the box (Su et al. 2019 clip pixel values).
  reflect mirror the overshoot back inside (x < l -> 2l - x, x > u -> 2u - x),
          then clip, for overshoots larger than the box width.
  reinit  redraw each out-of-box gene uniformly in the box (scipy's
          differential_evolution does this; Price, Storn & Lampinen 2005).

The engine picks one operator per dimension (DEConfig.bounds), e.g. reflect for
pixel coordinates and clip for colours.

One signature: (key, trials [P, D], lower [D], upper [D]) -> trials [P, D].
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
BoundsFn = Callable[[Array, Array, Array, Array], Array]


def clip(key: Array, trials: Array, lower: Array, upper: Array) -> Array:
    """Projects each gene onto [lower, upper]."""
    del key
    return jnp.clip(trials, lower[None, :], upper[None, :])


def reflect(key: Array, trials: Array, lower: Array, upper: Array) -> Array:
    """Mirrors genes at the violated bound, then clips what is still outside."""
    del key
    low, high = lower[None, :], upper[None, :]
    mirrored = jnp.where(trials < low, 2 * low - trials, trials)
    mirrored = jnp.where(trials > high, 2 * high - trials, mirrored)
    return jnp.clip(mirrored, low, high)


def reinit(key: Array, trials: Array, lower: Array, upper: Array) -> Array:
    """Redraws out-of-box genes uniformly inside the box."""
    low, high = lower[None, :], upper[None, :]
    fresh = low + jax.random.uniform(key, trials.shape) * (high - low)
    outside = (trials < low) | (trials > high)
    # Clip too: low + u (high - low) can round just past high in float32.
    return jnp.clip(jnp.where(outside, fresh, trials), low, high)


def per_dimension(bounds: str | tuple[str, ...], num_dims: int) -> tuple[str, ...]:
    """The bound-handling name of each of the D dimensions: one name for all, or one each."""
    if isinstance(bounds, str):
        return (bounds,) * num_dims
    return tuple(bounds)


def apply_per_dimension(names: tuple[str, ...], key: Array, trials: Array, lower: Array,
                        upper: Array) -> Array:
    """Applies each dimension's bound handling (one name a dimension, e.g. reflect for
    pixel coordinates and clip for colours). trials [P, D], lower/upper [D]."""
    distinct = sorted(set(names))
    if len(distinct) == 1:
        return BOUNDS[distinct[0]](key, trials, lower, upper)
    result = trials
    for index, name in enumerate(distinct):
        handled = BOUNDS[name](jax.random.fold_in(key, index), trials, lower, upper)
        dims = np.array([dim_name == name for dim_name in names])[None, :]
        result = jnp.where(dims, handled, result)
    return result


# Registry: name -> operator (one function plus one line here).
BOUNDS: dict[str, BoundsFn] = {
    "clip": clip,
    "reflect": reflect,
    "reinit": reinit,
}
