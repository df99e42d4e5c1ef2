"""Shared fixtures of the attack tests: strict numerics and a victim with a known
one-pixel weakness.

The victim ("red-dot") predicts class 3 on every image, except that one pure red
pixel (255, 0, 0) at column 12, row 20 (image[20, 12]) makes class 7 win. Its
class-7 logit rises smoothly as some pixel gets redder and closer to that spot, so
DE has a slope to follow, but only the exact location with r - g - b >= 243
crosses the decision boundary.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.victim import Victim

WEAK_X, WEAK_Y = 12, 20  # x = column, y = row: the weak pixel is image[WEAK_Y, WEAK_X]
TRUE_CLASS, WEAK_CLASS = 3, 7
NUM_CLASSES = 10
TRUE_LOGIT = 5.0  # class 3's fixed logit; every other class but 7 has logit 0
THRESHOLD = 242.5 / 255.0  # class 7 wins iff score > THRESHOLD: r - g - b >= 243 at the spot
GAIN = TRUE_LOGIT / THRESHOLD
GREY = 128


def location_weights(height: int = 32, width: int = 32) -> np.ndarray:
    """[H, W] in (0, 1]: 1 at the weak pixel, <= 0.57 one pixel away.

    A wide Gaussian (sigma 8) gives DE a slope from anywhere on the grid; a narrow one
    (sigma 0.5) makes the exact location the only one that can reach the threshold.
    """
    rows, columns = np.mgrid[0:height, 0:width]
    squared = (columns - WEAK_X) ** 2 + (rows - WEAK_Y) ** 2
    return (0.5 * np.exp(-squared / (2 * 8.0**2)) + 0.5 * np.exp(-squared / (2 * 0.5**2))).astype(np.float32)


def red_dot_score(variables, images):
    """[N] max over pixels of redness x location weight; redness = clip((r-g-b)/255, 0, 1)."""
    images = jnp.asarray(images, jnp.float32)
    redness = jnp.clip((images[..., 0] - images[..., 1] - images[..., 2]) / 255.0, 0.0, 1.0)
    return jnp.max(redness * variables["weights"][None], axis=(1, 2))


def red_dot_logits(variables, images):
    """[N, 10]: class 3 at TRUE_LOGIT, class 7 at GAIN x score, the rest 0."""
    score = red_dot_score(variables, images)
    columns = [jnp.zeros_like(score)] * NUM_CLASSES
    columns[TRUE_CLASS] = jnp.full_like(score, TRUE_LOGIT)
    columns[WEAK_CLASS] = GAIN * score
    return jnp.stack(columns, axis=-1)


def numpy_red_dot_logits(images: np.ndarray) -> np.ndarray:
    """Independent NumPy transcription of red_dot_logits, for re-verification."""
    images = np.asarray(images, np.float64)
    redness = np.clip((images[..., 0] - images[..., 1] - images[..., 2]) / 255.0, 0.0, 1.0)
    score = np.max(redness * location_weights()[None].astype(np.float64), axis=(1, 2))
    logits = np.zeros((len(images), NUM_CLASSES))
    logits[:, TRUE_CLASS] = TRUE_LOGIT
    logits[:, WEAK_CLASS] = GAIN * score
    return logits


def nan_logits(variables, images):
    """Every image: NaN logits."""
    del variables
    return jnp.full((images.shape[0], NUM_CLASSES), jnp.nan, jnp.float32)


def nan_when_perturbed(variables, images):
    """The red-dot logits on uniform images; NaN on any image with a pixel that differs
    from its top-left pixel (every perturbed candidate of a uniform clean image)."""
    images = jnp.asarray(images, jnp.float32)
    uniform = jnp.all(images == images[:, :1, :1, :], axis=(1, 2, 3))
    logits = red_dot_logits(variables, images)
    return jnp.where(uniform[:, None], logits, jnp.nan)


def make_victim(apply_fn=red_dot_logits, name: str = "red-dot") -> Victim:
    return Victim(name=name, apply_fn=apply_fn,
                  variables={"weights": jnp.asarray(location_weights())}, metadata={})


def grey_images(count: int, value: int = GREY) -> np.ndarray:
    return np.full((count, 32, 32, 3), value, np.uint8)


@pytest.fixture(autouse=True)
def strict_numerics():
    """As in tests/de: implicit rank or dtype promotion is an error."""
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture(scope="session")
def red_dot_victim() -> Victim:
    return make_victim()
