"""Colours confined near the clean neighbourhood: the search of an attacker who knows an
outlier repair.

`repair:threshold=T` (deattack.defenses.wrappers.outlier_repair) replaces a pixel whose
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

_NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def _mirror(index: jax.Array, size: int) -> jax.Array:
    """numpy "reflect" padding's index map (the edge is not repeated): -1 -> 1, size -> size - 2."""
    index = jnp.abs(index)
    return jnp.where(index >= size, 2 * (size - 1) - index, index)


def neighbour_medians(image: jax.Array, columns_rows: jax.Array) -> jax.Array:
    """Median of the 8 neighbours of each location, per channel (mean of the 4th and 5th).

    Args:
      image: [H, W, C] in [0, 255].
      columns_rows: int [K, 2] as (x, y).

    Returns:
      float32 [K, C].
    """
    height, width = image.shape[:2]
    columns, rows = columns_rows[:, 0], columns_rows[:, 1]
    values = jnp.stack([image[_mirror(rows + dy, height), _mirror(columns + dx, width)]
                        for dy, dx in _NEIGHBOURS]).astype(jnp.float32)  # [8, K, C]
    ordered = jnp.sort(values, axis=0)
    return 0.5 * (ordered[3] + ordered[4])


def confine(image: jax.Array, genes: jax.Array, radius: float) -> jax.Array:
    """One candidate's genes [5K] with its colours within `radius` of their neighbourhood medians.

    Coordinates are unchanged; each colour gene becomes an integer in
    [ceil(m - radius), floor(m + radius)] ∩ [0, 255], so decoding's rounding cannot push it
    out again.
    """
    columns_rows, colours = decode(genes)
    median = neighbour_medians(image, columns_rows)
    low = jnp.clip(jnp.ceil(median - radius), 0.0, 255.0)
    high = jnp.clip(jnp.floor(median + radius), 0.0, 255.0)
    pixels = genes.reshape(-1, GENES_PER_PIXEL)
    confined = jnp.clip(colours, low, high)
    return jnp.concatenate([pixels[:, :2], confined], axis=-1).reshape(genes.shape)


def confine_batch(images: jax.Array, genes: jax.Array, radius: float) -> jax.Array:
    """[N, H, W, C] x [N, 5K] -> [N, 5K]: `confine` for each image's candidate."""
    return jax.vmap(confine, in_axes=(0, 0, None))(images, genes, radius)
