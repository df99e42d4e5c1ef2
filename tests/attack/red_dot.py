"""A victim with a known one-pixel weakness ("red-dot"), and the attack settings the
tests share.

The victim predicts class 3 on every image, except that one pure red pixel (255, 0, 0)
at column 12, row 20 (image[20, 12]) makes class 7 win. Its class-7 logit rises
smoothly as some pixel gets redder and closer to that spot, so DE has a slope to
follow, but only the exact location with r - g - b >= 243 crosses the decision
boundary (one pixel away, even pure red reaches about 0.56 of it).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from deattack.attack import AttackConfig
from deattack.victims.victim import Victim

WEAK_X, WEAK_Y = 12, 20  # x = column, y = row: the weak pixel is image[WEAK_Y, WEAK_X]
TRUE_CLASS, WEAK_CLASS = 3, 7
NUM_CLASSES = 10
TRUE_LOGIT = 5.0  # class 3's fixed logit; every class but 3 and 7 has logit 0
MIN_REDNESS = 243  # r - g - b needed at the weak pixel
THRESHOLD = (MIN_REDNESS - 0.5) / 255.0  # class 7 wins iff score > THRESHOLD
GAIN = TRUE_LOGIT / THRESHOLD
GREY = 128

# One attack setting shared by the tests, so jit compiles each layout once per session
# (an AttackConfig is a static argument of the jitted steps: each distinct one compiles
# anew, and compiling dominates these tests' time).
BASE_CONFIG = AttackConfig(pixels=1, mode="untargeted", population_size=50, max_generations=40,
                           mutation="current-to-pbest/1", seed=0, slots=4)
TARGETED_CONFIG = dataclasses.replace(BASE_CONFIG, mode="targeted")
THREE_PIXEL_CONFIG = dataclasses.replace(BASE_CONFIG, pixels=3)
NUM_WEAKNESS_IMAGES = 4

# The layout-invariance runs (test_invariance.py): six grey images of class 3, targeted at
# 7 (reachable, solved after differing numbers of generations) and 5 (never
# reachable: the whole budget is spent), so layouts see slots finish at different times.
TARGETS = np.asarray([7, 5, 7, 7, 5, 7])

# Every distinct AttackConfig compiles anew (about 15 s here), so three layouts, which also
# vary the other layout fields: one slot, 3 generations a chunk; two slots refilled as
# they finish, forward passes in microbatches of 32 candidates; four slots refilled only
# once all are finished, 7 generations a chunk.
LAYOUTS = {
    "slots=1": dataclasses.replace(TARGETED_CONFIG, slots=1, chunk_generations=3),
    "slots=2 refill": dataclasses.replace(TARGETED_CONFIG, slots=2, refill=True, microbatch=32),
    "slots=4 no refill": dataclasses.replace(TARGETED_CONFIG, slots=4, refill=False, chunk_generations=7),
}


def location_weights(height: int = 32, width: int = 32) -> np.ndarray:
    """[H, W] in (0, 1]: 1 at the weak pixel, about 0.56 one pixel away.

    A wide Gaussian (sigma 8) gives DE a slope from anywhere on the grid; a narrow one
    (sigma 0.5) makes the exact location the only one that can reach the threshold.
    """
    rows, columns = np.mgrid[0:height, 0:width]
    squared = (columns - WEAK_X) ** 2 + (rows - WEAK_Y) ** 2
    weights = 0.5 * np.exp(-squared / (2 * 8.0**2)) + 0.5 * np.exp(-squared / (2 * 0.5**2))
    return weights.astype(np.float32)


def red_dot_logits(variables, images):
    """[N, 10]: class 3 at TRUE_LOGIT, class 7 at GAIN x score, the rest 0, where
    score = max over pixels of clip((r - g - b) / 255, 0, 1) x location weight."""
    images = jnp.asarray(images, jnp.float32)
    redness = jnp.clip((images[..., 0] - images[..., 1] - images[..., 2]) / 255.0, 0.0, 1.0)
    score = jnp.max(redness * variables["weights"][None], axis=(1, 2))
    columns = [jnp.zeros_like(score)] * NUM_CLASSES
    columns[TRUE_CLASS] = jnp.full_like(score, TRUE_LOGIT)
    columns[WEAK_CLASS] = GAIN * score
    return jnp.stack(columns, axis=-1)


def numpy_red_dot_logits(images: np.ndarray) -> np.ndarray:
    """Independent NumPy (float64) transcription of red_dot_logits, for re-verification."""
    images = np.asarray(images, np.float64)
    redness = np.clip((images[..., 0] - images[..., 1] - images[..., 2]) / 255.0, 0.0, 1.0)
    score = np.max(redness * location_weights().astype(np.float64)[None], axis=(1, 2))
    logits = np.zeros((len(images), NUM_CLASSES))
    logits[:, TRUE_CLASS] = TRUE_LOGIT
    logits[:, WEAK_CLASS] = GAIN * score
    return logits


def nan_logits(variables, images):
    """NaN logits for every image."""
    del variables
    return jnp.full((images.shape[0], NUM_CLASSES), jnp.nan, jnp.float32)


FAULTY_NAN_GREY = 100  # the faulty victim's NaN-when-perturbed images have this colour


def faulty_logits(variables, images):
    """The red-dot logits with non-finite faults, selected by the image (one victim, so one
    compilation, serves three cases):

    - an image whose top-left pixel has colour FAULTY_NAN_GREY: NaN logits unless every
      pixel has that colour, so each perturbed candidate of such a clean image gets NaN;
    - any other image that fools the red-dot victim (class 7 wins): +inf on class 7, so the
      argmax says class 7 exactly where the attack would succeed, through a non-finite logit.
    A clean image with a red pixel at the weak spot is therefore non-finite before any attack.
    """
    images = jnp.asarray(images, jnp.float32)
    logits = red_dot_logits(variables, images)
    corner = images[:, :1, :1, :]
    uniform = jnp.all(images == corner, axis=(1, 2, 3))
    nan_mode = jnp.all(corner == FAULTY_NAN_GREY, axis=(1, 2, 3))
    logits = jnp.where((nan_mode & ~uniform)[:, None], jnp.nan, logits)
    fooled = jnp.argmax(logits, axis=-1) == WEAK_CLASS
    weak_column = (jnp.arange(NUM_CLASSES) == WEAK_CLASS)[None]
    return jnp.where(fooled[:, None] & weak_column, jnp.inf, logits)


def make_victim(apply_fn=red_dot_logits, name: str = "red-dot") -> Victim:
    return Victim(name=name, apply_fn=apply_fn,
                  variables={"weights": jnp.asarray(location_weights())}, metadata={})


def grey_images(count: int, value: int = GREY) -> np.ndarray:
    return np.full((count, 32, 32, 3), value, np.uint8)
