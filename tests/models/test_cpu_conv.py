"""The CPU-fast 3x3 convolution: XLA's forward, a kernel gradient equal to XLA's to rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from deattack.models import cpu_conv


def _reference(x, kernel):
    return lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_forward_is_bit_identical_and_gradients_match_xla():
    x = jax.random.normal(jax.random.key(0), (4, 8, 8, 16))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 16, 8))
    cotangent = jax.random.normal(jax.random.key(2), (4, 8, 8, 8))
    np.testing.assert_array_equal(cpu_conv.conv3x3_same(x, kernel), _reference(x, kernel))
    ours = jax.vjp(cpu_conv.conv3x3_same, x, kernel)[1](cotangent)
    theirs = jax.vjp(_reference, x, kernel)[1](cotangent)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-4, atol=1e-4)


def test_kernel_gradient_against_a_numpy_sum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
    cotangent = rng.normal(size=(2, 5, 6, 2)).astype(np.float32)
    _, vjp = jax.vjp(cpu_conv.conv3x3_same, jnp.asarray(x), jnp.asarray(kernel))
    kernel_gradient = np.asarray(vjp(jnp.asarray(cotangent))[1])
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros_like(kernel)
    for i in range(3):
        for j in range(3):
            window = padded[:, i:i + 5, j:j + 6, :]
            expected[i, j] = np.einsum("nhwc,nhwd->cd", window, cotangent)
    np.testing.assert_allclose(kernel_gradient, expected, rtol=1e-4, atol=1e-4)


def test_other_convolutions_fall_back_to_xla():
    x = jnp.ones((1, 8, 8, 32))
    kernel = jnp.ones((3, 3, 32, 4))
    out = cpu_conv.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_array_equal(out, lax.conv_general_dilated(
        x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")))
