"""What counts as success, and the fitness DE minimises to reach it.

Criteria are values (foolbox's `Misclassification(labels)` /
`TargetedMisclassification(targets)`): a mode name fixes the code path, per-problem
labels and targets are data. Fitness is lower-is-better:

- untargeted, "probability": p(true class) (Su et al. 2019); success when the
  top-1 class is not the true one.
- targeted, "probability": 1 - p(target); success when the top-1 class is the target.
- "margin": logit(true) - max other logit (untargeted), or max other logit -
  logit(target) (targeted): the Carlini-Wagner style margin, negative exactly on
  success, so DE sees progress even where probabilities saturate.

An optional confidence threshold also asks the adversarial class's probability to
reach it. A candidate whose logits are NaN or Inf never succeeds and gets NaN
fitness, which the optimiser treats as +inf.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MODES = ("untargeted", "targeted")
FITNESSES = ("probability", "margin")


def evaluate(logits: jax.Array, labels: jax.Array, targets: jax.Array, *, mode: str,
             fitness: str, confidence: float) -> tuple[jax.Array, jax.Array]:
    """Fitness and success of candidates.

    Args:
      logits: [..., C].
      labels: [...] int true classes; targets: [...] int target classes (ignored untargeted).
      mode, fitness: names in MODES / FITNESSES (static).
      confidence: minimum probability of the adversarial class for success (static).

    Returns:
      fitness float32 [...] (NaN where logits are not finite), success bool [...].
    """
    logits = logits.astype(jnp.float32)
    finite = jnp.all(jnp.isfinite(logits), axis=-1)
    num_classes = logits.shape[-1]
    probabilities = jax.nn.softmax(logits, axis=-1)
    predicted = jnp.argmax(logits, axis=-1)
    reference = labels if mode == "untargeted" else targets
    reference_mask = jax.nn.one_hot(reference, num_classes, dtype=bool)
    reference_logit = jnp.sum(jnp.where(reference_mask, logits, 0.0), axis=-1)
    best_other_logit = jnp.max(jnp.where(reference_mask, -jnp.inf, logits), axis=-1)
    reference_probability = jnp.sum(jnp.where(reference_mask, probabilities, 0.0), axis=-1)
    if mode == "untargeted":
        success = predicted != labels
        adversarial_probability = jnp.max(jnp.where(reference_mask, 0.0, probabilities), axis=-1)
        if fitness == "probability":
            value = reference_probability
        else:
            value = reference_logit - best_other_logit
    elif mode == "targeted":
        success = predicted == targets
        adversarial_probability = reference_probability
        if fitness == "probability":
            value = 1.0 - reference_probability
        else:
            value = best_other_logit - reference_logit
    else:
        raise ValueError(f"unknown mode {mode!r}; known modes: {', '.join(MODES)}")
    if fitness not in FITNESSES:
        raise ValueError(f"unknown fitness {fitness!r}; known: {', '.join(FITNESSES)}")
    success = success & (adversarial_probability >= confidence) & finite
    return jnp.where(finite, value, jnp.nan), success
