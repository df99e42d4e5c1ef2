"""A tiny sweep on a hand-made linear victim and random images, shared by the tests
and by driver.py (the subprocess the resume test kills).

Every unit attacks 2 images or none, and slots=2, so each mode compiles one layout
(compiling dominates these tests' time). The victim is linear in the pixels, so one
changed pixel moves every logit a little: with population 8 and 2 generations some
problems succeed and most fail.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from deattack.attack import AttackConfig
from deattack.sweep.grid import ImageSet, SweepConfig
from deattack.victims.victim import Victim

NUM_IMAGES = 8
MISLABELLED = (4, 5)  # wrong labels: correct_only skips them (their unit attacks nothing)
CLASS_NAMES = tuple(f"class{i}" for i in range(10))

CONFIG = SweepConfig(
    name="toy",
    victims=("toy",),
    pixels=(1,),
    modes=("untargeted", "targeted"),
    images=ImageSet(split="test", start=0, count=6, correct_only=True),
    attack=AttackConfig(population_size=8, max_generations=2, targets="all", slots=2),
    chunk_images=2,
)


def toy_logits(variables, images):
    flat = jnp.reshape(jnp.asarray(images, jnp.float32), (images.shape[0], -1)) / 255.0
    return (flat - 0.5) @ variables["weights"] + variables["bias"]


def make_victim() -> Victim:
    rng = np.random.default_rng(0)
    variables = {"weights": jnp.asarray(rng.normal(size=(32 * 32 * 3, 10)).astype(np.float32) * 0.01),
                 "bias": jnp.zeros(10, jnp.float32)}
    return Victim(name="toy", apply_fn=toy_logits, variables=variables,
                  metadata={"params": 30730, "test_accuracy": 0.5})


def make_dataset(victim: Victim) -> tuple[np.ndarray, np.ndarray]:
    """Random images labelled with the victim's own predictions, but MISLABELLED."""
    images = np.random.default_rng(1).integers(0, 256, (NUM_IMAGES, 32, 32, 3)).astype(np.uint8)
    labels = np.argmax(np.asarray(toy_logits(victim.variables, images.astype(np.float32))), -1).astype(np.int32)
    labels[list(MISLABELLED)] = (labels[list(MISLABELLED)] + 1) % 10
    return images, labels


def sweep_inputs() -> dict:
    """Keyword arguments of run_sweep that swap in the toy victim and images."""
    victim = make_victim()
    return {"victims": {"toy": victim}, "datasets": {"test": make_dataset(victim)}}
