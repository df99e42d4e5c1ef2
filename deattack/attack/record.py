"""The result record: one per attacked (image, target) problem, the one place that names
its fields and says what they mean.

Runners build records with `Record(...)`, the attack's results.jsonl and the sweep's
SQLite store (deattack.sweep.store, one column a field) write `Record.to_dict()`; both
read them back as plain dicts with these keys, so a record is JSON as it stands. A search
may add fields of its own (`Record.extra`); the sweep store keeps those in its `extra`
column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Record:
    """One attacked problem.

    Attributes:
      image_index: the image's global id (its index in the split).
      true_label: its class.
      target: the target class, or -1 for an untargeted problem.
      success: the adversarial image, re-run through the victim by a separate forward
        pass, meets the criterion (untargeted: not the true class; targeted: the target;
        both with at least `confidence`).
      status: "success"; "failed" (the budget ran out); "unverified" (the search claimed
        a success the separate forward pass did not confirm); "nonfinite_logits" (the
        victim gave NaN/Inf for the clean image or for every candidate: a fault of the
        victim, left out of the success rate).
      queries: victim queries this problem spent (the initial population counts; a
        success stops the search).
      generations: optimiser generations run (0 for the corner scan).
      best_fitness: the search's best fitness (lower is better), None if not finite.
      pixels: the changed pixels as [[x, y, r, g, b], ...], x = column, y = row (the
        pixel image[y, x] is set to (r, g, b)), colours 0..255.
      adversarial_prediction: the victim's class for the adversarial image.
      adversarial_confidence: its probability for that class.
      target_confidence: its probability for the target (None untargeted).
      true_confidence_after: its probability for the true class.
      original_prediction, original_confidence: the victim's class and probability for
        the clean image.
      extra: fields a search adds. The corner scan (deattack.attack.exhaustive) adds
        queries_evaluated (forward passes really run: the chunk holding the first
        success is evaluated whole, only the scan up to it is charged),
        first_success_query (scan position + 1 of the first fooling candidate, or
        None) and n_fooling (with stop_early=False, how many corner pixels fool).
    """

    image_index: int
    true_label: int
    target: int
    success: bool
    status: str
    queries: int
    generations: int
    best_fitness: float | None
    pixels: list[list[int]]
    adversarial_prediction: int | None
    adversarial_confidence: float | None
    target_confidence: float | None
    true_confidence_after: float | None
    original_prediction: int | None
    original_confidence: float | None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready dict: the fields above in order, then `extra`'s."""
        fields = {name: getattr(self, name) for name in RECORD_FIELDS}
        fields["pixels"] = [list(pixel) for pixel in self.pixels]
        return {**fields, **self.extra}

    @classmethod
    def nonfinite(cls, image_index: int, true_label: int, target: int) -> "Record":
        """A problem whose clean image already gives NaN/Inf logits: recorded, not attacked."""
        return cls(image_index=image_index, true_label=true_label, target=target, success=False,
                   status="nonfinite_logits", queries=0, generations=0, best_fitness=None, pixels=[],
                   adversarial_prediction=None, adversarial_confidence=None, target_confidence=None,
                   true_confidence_after=None, original_prediction=None, original_confidence=None)


# The fields every record has, in record order (Record.extra's come after them).
RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(Record) if field.name != "extra")
