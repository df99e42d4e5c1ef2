"""Sampling helpers the DE operators share."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


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
