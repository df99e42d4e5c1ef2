"""Pure image filters on (..., H, W, C) uint8-valued float images: the 3x3 median
(median3), the median of the 8 neighbours (neighbour_median) and the outlier repair that
replaces only pixels far from it (outlier_repair). Inference-time defenses wrap a victim
with them (deattack.victims.defended); the attack's confinement reuses neighbour_median."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _neighbourhood(images: jax.Array, mode: str, centre: bool) -> jax.Array:
    """[9 or 8, N, H, W, C]: the 3x3 neighbours of every pixel (row-major), padded by `mode`."""
    _, height, width, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=mode)
    views = [padded[:, dy:dy + height, dx:dx + width, :]
             for dy in range(3) for dx in range(3) if centre or (dy, dx) != (1, 1)]
    return jnp.stack(views)


def _like(result: jax.Array, images: jax.Array) -> jax.Array:
    """Back to the input's dtype (rounded for integer images)."""
    if jnp.issubdtype(images.dtype, jnp.integer):
        result = jnp.round(result)
    return result.astype(images.dtype)


def median3(images: jax.Array) -> jax.Array:
    """3x3 median filter per channel. images: [N, H, W, C] -> same shape and dtype."""
    return jnp.sort(_neighbourhood(images, "symmetric", centre=True), axis=0)[4]


def neighbour_median(images: jax.Array) -> jax.Array:
    """Median of each pixel's 8 neighbours per channel (the mean of the 4th and 5th), borders
    mirrored without repeating the edge: what outlier_repair compares a pixel with.
    images: [N, H, W, C] -> float32, same shape."""
    ordered = jnp.sort(_neighbourhood(images.astype(jnp.float32), "reflect", centre=False), axis=0)
    return 0.5 * (ordered[3] + ordered[4])


def outlier_repair(images: jax.Array, threshold: float = 64.0) -> jax.Array:
    """Replaces isolated outlier pixels by the median of their 8 neighbours.

    Args:
      images: [N, H, W, C] in [0, 255].
      threshold: a pixel is an outlier when |pixel - neighbour median| > threshold in
        any channel, [0, 255].

    Returns:
      [N, H, W, C], same dtype; only outlier pixels change.
    """
    median = neighbour_median(images)
    outlier = jnp.any(jnp.abs(images.astype(jnp.float32) - median) > threshold, axis=-1, keepdims=True)
    return _like(jnp.where(outlier, median, images.astype(jnp.float32)), images)
