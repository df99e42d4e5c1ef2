"""Pixel encoding: decode, search box, initial populations (Su et al. 2019)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from deattack.attack import encoding

decode = jax.jit(encoding.decode)
# (key, population_size, num_pixels, height, width): jitted, so each shape compiles once
paper_population = jax.jit(encoding.paper_population, static_argnums=(1, 2, 3, 4))
uniform_population = jax.jit(encoding.uniform_population, static_argnums=(1, 2, 3, 4))


def test_decode_floors_coordinates_and_rounds_and_clips_colours():
    genes = jnp.asarray([12.7, 20.0, 254.6, -3.0, 300.0,  # pixel 1
                         31.999, 0.999, 0.5, 1.5, 127.49],  # pixel 2: round half to even
                        jnp.float32)
    columns_rows, colours = decode(genes)
    assert columns_rows.dtype == jnp.int32 and colours.dtype == jnp.float32
    np.testing.assert_array_equal(columns_rows, [[12, 20], [31, 0]])
    np.testing.assert_array_equal(colours, [[255.0, 0.0, 255.0], [0.0, 2.0, 127.0]])


def test_decode_keeps_leading_axes():
    genes = jnp.zeros((2, 3, 5 * 4), jnp.float32)
    columns_rows, colours = decode(genes)
    assert columns_rows.shape == (2, 3, 4, 2) and colours.shape == (2, 3, 4, 3)


def test_box_bounds_use_width_for_x_and_height_for_y():
    lower, upper = encoding.box(2, height=24, width=40)
    assert lower.shape == upper.shape == (10,)
    assert lower.dtype == upper.dtype == jnp.float32
    np.testing.assert_array_equal(lower, np.zeros(10))
    np.testing.assert_allclose(upper, [40, 24, 255, 255, 255] * 2, atol=2e-3)
    assert np.all(np.asarray(upper)[[0, 1, 5, 6]] < [40, 24, 40, 24])  # coordinate tops exclusive
    columns_rows, colours = decode(upper)
    np.testing.assert_array_equal(columns_rows, [[39, 23], [39, 23]])
    np.testing.assert_array_equal(colours, np.full((2, 3), 255.0))


def _clipped_normal_moments(mean, std, low, high):
    """Mean and std of clip(N(mean, std), low, high), by numerical integration."""
    x = np.linspace(low, high, 200_001)
    density = stats.norm.pdf(x, mean, std)
    below, above = stats.norm.cdf(low, mean, std), stats.norm.sf(high, mean, std)
    first = np.trapezoid(x * density, x) + low * below + high * above
    second = np.trapezoid(x**2 * density, x) + low**2 * below + high**2 * above
    return first, np.sqrt(second - first**2), below, above


@pytest.mark.allow_rank_promotion
def test_paper_population_matches_clipped_normal_and_uniform_grid():
    size = 4000
    population = np.asarray(paper_population(jax.random.key(0), size, 1, 32, 32))
    assert population.shape == (size, 5) and population.dtype == np.float32
    coordinates, colours = population[:, :2], population[:, 2:]
    assert coordinates.min() >= 0.0 and coordinates.max() < 32.0
    assert colours.min() >= 0.0 and colours.max() <= 255.0

    mean, std, below, above = _clipped_normal_moments(128.0, 127.0, 0.0, 255.0)
    assert std < 0.75 * 127.0  # clipping matters (~91.5): N(128, 127) alone has std 127
    np.testing.assert_allclose(colours.mean(), mean, atol=3.0)  # standard error ~ 1
    np.testing.assert_allclose(colours.std(), std, atol=2.0)  # standard error ~ 0.5
    np.testing.assert_allclose(np.mean(colours == 0.0), below, atol=0.02)  # ~ 0.157
    np.testing.assert_allclose(np.mean(colours == 255.0), above, atol=0.02)  # ~ 0.16

    np.testing.assert_allclose(coordinates.mean(axis=0), [16.0, 16.0], atol=0.6)
    for axis in range(2):
        counts = np.bincount(np.floor(coordinates[:, axis]).astype(int), minlength=32)
        assert counts.shape == (32,)
        np.testing.assert_allclose(counts, size / 32, rtol=0.35)


@pytest.mark.allow_rank_promotion
def test_paper_population_non_square_grid():
    population = np.asarray(paper_population(jax.random.key(1), 2000, 2, 24, 40))
    assert population.shape == (2000, 10)
    x, y = population[:, [0, 5]], population[:, [1, 6]]
    assert x.max() < 40 and y.max() < 24 and x.max() > 35  # x spans the width, not the height


@pytest.mark.allow_rank_promotion
def test_paper_population_differs_per_key():
    first = paper_population(jax.random.key(0), 4000, 1, 32, 32)
    second = paper_population(jax.random.key(1), 4000, 1, 32, 32)
    assert not np.array_equal(first, second)


@pytest.mark.allow_rank_promotion
def test_uniform_population_in_box():
    population = np.asarray(uniform_population(jax.random.key(0), 1000, 2, 32, 32))
    lower, upper = (np.asarray(b) for b in encoding.box(2))
    assert population.shape == (1000, 10)
    assert np.all(population >= lower) and np.all(population <= upper)
    np.testing.assert_allclose(population.mean(axis=0), (lower + upper) / 2, rtol=0.1)


@pytest.mark.parametrize("initialise", sorted(encoding.INITIALISATIONS))
def test_population_initialisers_under_strict_rank_promotion(initialise):
    population = encoding.INITIALISATIONS[initialise](jax.random.key(0), 4, 1)
    assert population.shape == (4, 5)


_LOWER, _UPPER = (np.asarray(bound) for bound in encoding.box(4))


@st.composite
def genes_in_box(draw):
    num_pixels = draw(st.integers(1, 4))
    values = [draw(st.floats(float(_LOWER[i]), float(_UPPER[i]), width=32))
              for i in range(5 * num_pixels)]
    return np.asarray(values, np.float32)


@settings(max_examples=60, deadline=None)
@given(genes_in_box())
def test_decode_of_genes_in_box_is_on_grid_and_in_colour_range(genes):
    columns_rows, colours = (np.asarray(a) for a in decode(jnp.asarray(genes)))
    num_pixels = len(genes) // 5
    assert columns_rows.shape == (num_pixels, 2) and colours.shape == (num_pixels, 3)
    assert np.all((columns_rows >= 0) & (columns_rows <= 31))
    assert np.all((colours >= 0) & (colours <= 255))
    np.testing.assert_array_equal(colours, np.round(colours))  # integers
    pixels = genes.reshape(-1, 5).astype(np.float64)
    np.testing.assert_array_equal(columns_rows, np.floor(pixels[:, :2]))
    np.testing.assert_array_equal(colours, np.round(pixels[:, 2:]))
