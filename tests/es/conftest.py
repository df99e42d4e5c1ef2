"""CMA-ES tests run with JAX's strictest numerics, so implicit promotions fail."""

import jax
import pytest


@pytest.fixture(autouse=True)
def strict_numerics():
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        yield
