"""Pixel encoding: k pixels as one vector of D = 5k genes (x, y, r, g, b) per pixel.

As in Su, Vargas & Sakurai (TEVC 2019): coordinates on the 32 x 32 grid, colours
0..255. DE searches a continuous box; decoding floors coordinates (so each of the
32 columns gets the same share of [0, 32)) and rounds colours.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GENES_PER_PIXEL = 5  # x (column), y (row), red, green, blue
_COORDINATE_TOP = 1e-3  # keeps floor(x) <= size - 1 while the box stays [0, size)


def box(num_pixels: int, height: int = 32, width: int = 32) -> tuple[jax.Array, jax.Array]:
    """Lower and upper bounds [D] of the search box."""
    lower = jnp.zeros((num_pixels * GENES_PER_PIXEL,), jnp.float32)
    pixel_upper = jnp.asarray([width - _COORDINATE_TOP, height - _COORDINATE_TOP, 255.0, 255.0, 255.0])
    return lower, jnp.tile(pixel_upper, num_pixels).astype(jnp.float32)


def bound_names(num_pixels: int, coordinates: str, colours: str) -> tuple[str, ...]:
    """DE bound handling per gene: one name for coordinates, one for colours."""
    return (coordinates, coordinates, colours, colours, colours) * num_pixels


def dim_kinds(num_pixels: int) -> tuple[str, ...]:
    """What DE may know about each gene (deattack.de.space): coordinates are read
    through floor, so they are "integer"; colours that fool tend to be saturated
    (0 or 255), so they are "extreme"."""
    return ("integer", "integer", "extreme", "extreme", "extreme") * num_pixels


def decode(genes: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Integer pixels from genes.

    Args:
      genes: [..., 5K] float.

    Returns:
      columns_rows: int32 [..., K, 2] as (x, y); colours: float32 [..., K, 3] in 0..255.
    """
    pixels = genes.reshape(*genes.shape[:-1], -1, GENES_PER_PIXEL)
    columns_rows = jnp.floor(pixels[..., :2]).astype(jnp.int32)
    colours = jnp.clip(jnp.round(pixels[..., 2:]), 0.0, 255.0)
    return columns_rows, colours


def paper_population(key: jax.Array, population_size: int, num_pixels: int,
                     height: int = 32, width: int = 32) -> jax.Array:
    """Su et al.'s initial population: x, y ~ U(0, 32), rgb ~ N(128, 127) clipped.

    Returns:
      float32 [P, 5K].
    """
    coordinate_key, colour_key = jax.random.split(key)
    shape = (population_size, num_pixels)
    size = jnp.asarray([[[width, height]]], jnp.float32)  # [1, 1, 2]: per column and row
    coordinates = jax.random.uniform(coordinate_key, (*shape, 2)) * (size - _COORDINATE_TOP)
    colours = jnp.clip(128.0 + 127.0 * jax.random.normal(colour_key, (*shape, 3)), 0.0, 255.0)
    return jnp.concatenate([coordinates, colours], axis=-1).reshape(population_size, -1)


def uniform_population(key: jax.Array, population_size: int, num_pixels: int,
                       height: int = 32, width: int = 32) -> jax.Array:
    """Uniform in the box: [P, 5K]."""
    lower, upper = box(num_pixels, height, width)
    uniform = jax.random.uniform(key, (population_size, lower.shape[0]))
    return lower[None, :] + uniform * (upper - lower)[None, :]


def corner_population(key: jax.Array, population_size: int, num_pixels: int,
                      height: int = 32, width: int = 32) -> jax.Array:
    """x, y ~ U(0, size) as in the paper; each colour channel 0 or 255 (1/2 each): the
    colour cube's corners, where one-pixel attacks mostly succeed (see
    deattack.attack.exhaustive).

    Returns:
      float32 [P, 5K].
    """
    coordinate_key, colour_key = jax.random.split(key)
    shape = (population_size, num_pixels)
    size = jnp.asarray([[[width, height]]], jnp.float32)
    coordinates = jax.random.uniform(coordinate_key, (*shape, 2)) * (size - _COORDINATE_TOP)
    colours = jnp.where(jax.random.bernoulli(colour_key, 0.5, (*shape, 3)), 255.0, 0.0)
    return jnp.concatenate([coordinates, colours], axis=-1).reshape(population_size, -1)


INITIALISATIONS = {"paper": paper_population, "uniform": uniform_population, "corners": corner_population}
