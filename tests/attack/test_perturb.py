"""Writing candidate pixels into images, against NumPy loops."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deattack.attack import encoding, perturb

apply_pixels = jax.jit(perturb.apply_pixels)
perturb_batch = jax.jit(perturb.perturb_batch)


def _image(seed=0, height=32, width=32):
    """Values in 100..199, so the test colours below always differ from them."""
    return np.random.default_rng(seed).integers(100, 200, (height, width, 3)).astype(np.uint8)


def _numpy_loop(image, genes):
    """Reference written from the docstrings: pixel (x, y) is image[y, x]; colours rounded
    and clipped to 0..255; a later pixel at the same place wins."""
    out = np.asarray(image, np.float32).copy()
    for x, y, r, g, b in np.asarray(genes, np.float64).reshape(-1, 5):
        out[int(y), int(x)] = [min(max(round(c), 0), 255) for c in (r, g, b)]  # genes >= 0: int floors
    return out


def test_apply_pixels_changes_exactly_the_k_pixels():
    image = _image()
    genes = np.asarray([3.2, 5.9, 10.4, 20.6, 30.0,  # image[5, 3] = (10, 21, 30)
                        31.5, 0.0, 255.0, 0.0, 254.51,  # image[0, 31] = (255, 0, 255)
                        0.0, 31.99, 50.0, 60.0, 70.0],  # image[31, 0] = (50, 60, 70)
                       np.float32)
    out = np.asarray(apply_pixels(jnp.asarray(image), jnp.asarray(genes)))
    assert out.shape == image.shape and out.dtype == np.float32
    changed = np.argwhere(np.any(out != image, axis=-1))
    np.testing.assert_array_equal(sorted(map(tuple, changed)), [(0, 31), (5, 3), (31, 0)])
    np.testing.assert_array_equal(out[5, 3], [10, 21, 30])
    np.testing.assert_array_equal(out[0, 31], [255, 0, 255])
    np.testing.assert_array_equal(out[31, 0], [50, 60, 70])
    np.testing.assert_array_equal(out, _numpy_loop(image, genes))


def test_apply_pixels_x_is_the_column():
    image = np.zeros((32, 32, 3), np.float32)
    out = np.asarray(apply_pixels(jnp.asarray(image), jnp.asarray([2.0, 9.0, 255.0, 0.0, 0.0])))
    assert out[9, 2, 0] == 255.0 and out[2, 9, 0] == 0.0


def test_apply_pixels_non_square_image():
    image = _image(height=24, width=40)
    genes = np.asarray([39.5, 23.5, 1.0, 2.0, 3.0], np.float32)
    out = np.asarray(apply_pixels(jnp.asarray(image), jnp.asarray(genes)))
    np.testing.assert_array_equal(out, _numpy_loop(image, genes))
    assert np.count_nonzero(np.any(out != image, axis=-1)) == 1


def test_apply_pixels_same_location_later_pixel_wins():
    image = _image()
    genes = np.asarray([7.1, 4.2, 1.0, 2.0, 3.0, 7.9, 4.9, 250.0, 251.0, 252.0], np.float32)
    out = np.asarray(apply_pixels(jnp.asarray(image), jnp.asarray(genes)))
    np.testing.assert_array_equal(out[4, 7], [250, 251, 252])
    assert np.count_nonzero(np.any(out != image, axis=-1)) == 1


def _random_genes(rng, shape, num_pixels):
    lower, upper = (np.asarray(b) for b in encoding.box(num_pixels))
    return (lower + rng.random((*shape, lower.shape[0])) * (upper - lower)).astype(np.float32)


def test_perturb_batch_equals_looping_apply_pixels():
    rng = np.random.default_rng(1)
    images = np.stack([_image(seed) for seed in range(2)])
    candidates = _random_genes(rng, (2, 3), num_pixels=2)  # N = 2, P = 3, K = 2
    batch = np.asarray(perturb_batch(jnp.asarray(images), jnp.asarray(candidates)))
    assert batch.shape == (2, 3, 32, 32, 3) and batch.dtype == np.float32
    for n in range(2):
        for p in range(3):
            np.testing.assert_array_equal(
                batch[n, p], np.asarray(apply_pixels(jnp.asarray(images[n]), jnp.asarray(candidates[n, p]))))
            np.testing.assert_array_equal(batch[n, p], _numpy_loop(images[n], candidates[n, p]))


_LOWER, _UPPER = (np.asarray(bound) for bound in encoding.box(3))


@st.composite
def genes_in_box(draw):
    """K = 1..3 pixels anywhere in the box (hypothesis readily makes locations collide)."""
    num_pixels = draw(st.integers(1, 3))
    values = [draw(st.floats(float(_LOWER[i]), float(_UPPER[i]), width=32))
              for i in range(5 * num_pixels)]
    return np.asarray(values, np.float32)


_IMAGE = _image(7)


@settings(max_examples=60, deadline=None)
@given(genes_in_box())
def test_numpy_apply_pixels_agrees_with_apply_pixels(genes):
    expected = np.asarray(apply_pixels(jnp.asarray(_IMAGE), jnp.asarray(genes)))
    np.testing.assert_array_equal(perturb.numpy_apply_pixels(_IMAGE, genes), expected)
    np.testing.assert_array_equal(_numpy_loop(_IMAGE, genes), expected)
