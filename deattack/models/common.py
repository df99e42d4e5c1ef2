"""Input convention shared by every victim.

Every model takes NHWC images with pixel values in [0, 255] (uint8 or float) and
normalises inside, so an attack writes raw colours and never needs to know a
model's preprocessing (foolbox's "bounds + preprocessing belong to the model").
"""

from __future__ import annotations

import jax.numpy as jnp

# Per-channel statistics of the CIFAR-10 training split, in [0, 255] units
# (shared/DATA.md: 125.31/122.95/113.87, std 62.99/62.09/66.70).
CIFAR10_MEAN = (125.307, 122.950, 113.865)
CIFAR10_STD = (62.993, 62.089, 66.705)

PIXEL_BOUNDS = (0.0, 255.0)


def normalize(images: jnp.ndarray, dtype=None) -> jnp.ndarray:
    """Maps [0, 255] NHWC images to zero-mean, unit-variance channels, in `dtype`: by
    default float32 for integer images and the images' own float dtype otherwise, so
    bfloat16 images stay bfloat16 through the model (a float32 constant here would
    promote the whole network back to float32; AttackConfig.precision="bf16")."""
    if dtype is None:
        dtype = images.dtype if jnp.issubdtype(images.dtype, jnp.floating) else jnp.float32
    x = images.astype(dtype)
    mean = jnp.asarray(CIFAR10_MEAN, dtype).reshape(1, 1, 1, 3)
    std = jnp.asarray(CIFAR10_STD, dtype).reshape(1, 1, 1, 3)
    return (x - mean) / std
