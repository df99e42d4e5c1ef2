"""Writing candidate pixels into images: one vectorised scatter for a whole batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deattack.attack.encoding import decode


def overwritten(columns_rows: jax.Array) -> jax.Array:
    """[K] bool: a later pixel of the same candidate writes the same location (it wins)."""
    same = jnp.all(columns_rows[:, None, :] == columns_rows[None, :, :], axis=-1)
    order = jnp.arange(columns_rows.shape[0])
    return jnp.any(same & (order[None, :] > order[:, None]), axis=1)


def apply_pixels(image: jax.Array, genes: jax.Array) -> jax.Array:
    """One image with the K pixels of one candidate written in.

    Args:
      image: [H, W, C] float in [0, 255].
      genes: [5K] candidate; pixel (x, y) is image[y, x] (x = column).

    Returns:
      [H, W, C] float32. Where two pixels share a location the later one wins.
    """
    columns_rows, colours = decode(genes)
    # Scatter order of duplicate indices is unspecified in XLA (it differs by
    # backend), so an earlier pixel overwritten by a later one at the same location
    # is sent out of bounds and dropped: "later wins" on every device.
    rows = jnp.where(overwritten(columns_rows), image.shape[0], columns_rows[:, 1])
    return image.astype(jnp.float32).at[rows, columns_rows[:, 0]].set(colours, mode="drop")


def perturb_batch(images: jax.Array, candidates: jax.Array) -> jax.Array:
    """Every candidate of every image: [N, H, W, C] x [N, P, 5K] -> [N, P, H, W, C]."""
    per_image = jax.vmap(apply_pixels, in_axes=(None, 0))
    return jax.vmap(per_image)(images, candidates)


def numpy_apply_pixels(image: np.ndarray, genes: np.ndarray) -> np.ndarray:
    """Independent NumPy re-implementation of the perturbation, for verification."""
    out = np.array(image, dtype=np.float32, copy=True)
    for x, y, r, g, b in np.asarray(genes, np.float64).reshape(-1, 5):
        out[int(np.floor(y)), int(np.floor(x))] = np.clip(np.round([r, g, b]), 0, 255)
    return out
