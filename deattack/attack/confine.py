"""Colours confined near the clean neighbourhood: the search of an attacker who knows an
outlier repair.

`repair:threshold=T` (deattack.filters.outlier_repair) replaces a pixel whose
value differs from the median of its 8 neighbours by more than T in any channel. A lone
changed pixel survives it only within T of that median, so the attack that knows the
defense searches there alone: with `neighbour_radius=r` every candidate colour is clipped,
per channel, to the integers in [m - r, m + r] (and [0, 255]), m the median of the clean
image's 8 neighbours of the pixel's location, borders mirrored as the repair mirrors them
(numpy "reflect"). Without it, DE's candidates mostly land where the repair undoes them
and the search sees a flat fitness.

A projection, not an encoding: DE's genes stay as they are and are scored as their
projection (end to end through whatever victim is attacked), and the projected genes are
what an attack records, so every reader of recorded pixels sees the colours that were
scored. Pixels of one candidate next to each other change each other's neighbourhoods;
the projection reads the clean image only (the scoring sees the real effect).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from deattack.attack.encoding import GENES_PER_PIXEL, decode
from deattack.filters import neighbour_median


def neighbour_medians(image: jax.Array, columns_rows: jax.Array) -> jax.Array:
    """Median of the 8 neighbours of each location, per channel (outlier_repair's statistic).

    Args:
      image: [H, W, C] in [0, 255].
      columns_rows: int [K, 2] as (x, y).

    Returns:
      float32 [K, C].
    """
    return neighbour_median(image[None])[0][columns_rows[:, 1], columns_rows[:, 0]]


def confine_to_medians(medians: jax.Array, genes: jax.Array, radius: float) -> jax.Array:
    """One candidate's genes [5K] with its colours within `radius` of `medians` [H, W, C]
    (neighbour_median of its clean image) at its locations.

    Coordinates are unchanged; each colour gene becomes an integer in
    [ceil(m - radius), floor(m + radius)] ∩ [0, 255], so decoding's rounding cannot push it
    out again.
    """
    columns_rows, colours = decode(genes)
    median = medians[columns_rows[:, 1], columns_rows[:, 0]]
    low = jnp.clip(jnp.ceil(median - radius), 0.0, 255.0)
    high = jnp.clip(jnp.floor(median + radius), 0.0, 255.0)
    pixels = genes.reshape(-1, GENES_PER_PIXEL)
    confined = jnp.clip(colours, low, high)
    return jnp.concatenate([pixels[:, :2], confined], axis=-1).reshape(genes.shape)


def confine(image: jax.Array, genes: jax.Array, radius: float) -> jax.Array:
    """One candidate's genes [5K] confined near the neighbour medians of its clean image [H, W, C]."""
    return confine_to_medians(neighbour_median(image[None])[0], genes, radius)


def confine_batch(images: jax.Array, genes: jax.Array, radius: float) -> jax.Array:
    """[N, H, W, C] x [N, 5K] -> [N, 5K]: `confine` for each image's candidate."""
    return jax.vmap(confine_to_medians, in_axes=(0, 0, None))(neighbour_median(images), genes, radius)
