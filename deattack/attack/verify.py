"""Finishing a problem: its best candidate re-run through the victim by a separate
forward pass (`verify_fn`, the victim's own predict, not the search's fitness), judged
by the criterion again, and written as a Record. A search's claim of success that this
pass does not confirm is recorded as "unverified", never as a success.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deattack.attack import criteria, encoding
from deattack.attack.config import AttackConfig
from deattack.attack.perturb import numpy_apply_pixels
from deattack.attack.problems import Problem
from deattack.attack.record import Record


@dataclasses.dataclass(frozen=True)
class Verifier:
    """Re-verifies finished problems and builds their records.

    Attributes:
      config: the attack's config (mode, fitness, confidence).
      project: (images [N, H, W, C], genes [N, D]) -> the genes as they were scored
        (deattack.attack.confine's clipping; the identity without neighbour_radius).
      images: float32 [N, H, W, C], the runner's images (Problem.row indexes them).
      verify_fn: perturbed images [M, H, W, C] -> logits [M, C], the victim's forward.
      clean_probabilities: [N, C] softmax of the clean images' logits.
    """

    config: AttackConfig
    project: Callable[[Any, Any], Any]
    images: np.ndarray
    verify_fn: Callable[[np.ndarray], np.ndarray]
    clean_probabilities: np.ndarray

    def records(self, problems: Sequence[Problem], status: Mapping[str, np.ndarray],
                slot_ids: Sequence[int]) -> list[Record]:
        """Records of `problems`, whose search state is row `slot_ids[i]` of `status`
        (best_member, done, queries, generation, best_fitness)."""
        rows = [p.row for p in problems]
        genes = np.asarray(self.project(self.images[rows], status["best_member"][list(slot_ids)]))
        perturbed = np.stack([numpy_apply_pixels(self.images[p.row], g) for p, g in zip(problems, genes)])
        logits = self.verify_fn(perturbed)
        labels = np.asarray([p.label for p in problems])
        targets = np.asarray([p.target for p in problems])
        _, verified = criteria.evaluate(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(targets),
                                        mode=self.config.mode, fitness=self.config.fitness,
                                        confidence=self.config.confidence)
        verified = np.asarray(verified)
        probabilities = np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))
        columns_rows, colours = encoding.decode(jnp.asarray(genes))
        columns_rows, colours = np.asarray(columns_rows), np.asarray(colours)
        records = []
        for i, (problem, slot) in enumerate(zip(problems, slot_ids)):
            claimed = bool(status["done"][slot])
            success = claimed and bool(verified[i])
            status_text = "success" if success else ("unverified" if claimed else "failed")
            best_fitness = status["best_fitness"][slot]
            if not claimed and not np.isfinite(best_fitness):
                # Not one candidate gave finite logits: the victim failed, not the search,
                # so the problem leaves the success rate like a NaN clean image does.
                status_text = "nonfinite_logits"
            adversarial_class = int(np.argmax(logits[i]))
            clean = self.clean_probabilities[problem.row]
            records.append(Record(
                image_index=problem.image_index,
                true_label=problem.label,
                target=problem.target,
                success=success,
                status=status_text,
                queries=int(status["queries"][slot]),
                generations=int(status["generation"][slot]),
                best_fitness=float(best_fitness) if np.isfinite(best_fitness) else None,
                pixels=[[int(x), int(y), int(r), int(g), int(b)] for (x, y), (r, g, b)
                        in zip(columns_rows[i], colours[i])],
                adversarial_prediction=adversarial_class,
                adversarial_confidence=float(probabilities[i, adversarial_class]),
                target_confidence=float(probabilities[i, problem.target]) if problem.target >= 0 else None,
                true_confidence_after=float(probabilities[i, problem.label]),
                original_prediction=int(np.argmax(clean)),
                original_confidence=float(np.max(clean)),
            ))
        return records
