"""Robust accuracy against the number of pixels, the standard L0 evaluation: for each k of
an increasing list, the share of images still classified correctly after an attack with
at most k pixels, and each image's smallest fooling k ("anytime L0").

An image fooled with k pixels is not attacked again at a larger k (it stays fooled: a
larger budget of pixels contains the smaller), so the cost falls as k grows. Each k runs
`deattack.attack` with `pixels=k` into its own results folder (OUT/k-K), so a stopped
evaluation resumes where it stopped and each k's records stay as `deattack attack`
writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack.attack.api import attack
from deattack.attack.config import AttackConfig
from deattack.victims.victim import Victim, predict


@dataclasses.dataclass(frozen=True)
class Robustness:
    """The evaluation of `robust_accuracy`.

    Attributes:
      ks: the pixel counts, increasing.
      image_indices: [N] the images evaluated (all of them, clean-misclassified included).
      correct: [N] bool, the victim classifies the clean image correctly.
      smallest_k: [N] int, the smallest k that fooled the image; 0 for a clean
        misclassification, -1 when no k of `ks` did.
      queries: [N] int, victim queries spent on the image over every k.
      robust_accuracy: {k: share of the N images classified correctly after the attack
        with at most k pixels}.
      records: {k: the records of the images attacked at that k}.
    """

    ks: tuple[int, ...]
    image_indices: np.ndarray
    correct: np.ndarray
    smallest_k: np.ndarray
    queries: np.ndarray
    robust_accuracy: dict[int, float]
    records: dict[int, list[dict[str, Any]]]

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers: robust accuracy and attack success per k."""
        count, correct = len(self.image_indices), int(self.correct.sum())
        rows = []
        for k in self.ks:
            fooled = int(((self.smallest_k > 0) & (self.smallest_k <= k)).sum())
            rows.append({"k": k, "robust_accuracy": self.robust_accuracy[k], "fooled": fooled,
                         "success_rate": fooled / correct if correct else 0.0,
                         "attacked": len(self.records[k])})
        return {"n_images": count, "n_correct": correct, "clean_accuracy": correct / count if count else 0.0,
                "rows": rows, "queries_total": int(self.queries.sum()),
                "smallest_k": {int(i): int(k) for i, k in zip(self.image_indices, self.smallest_k)}}


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Increasing positive integers; ValueError otherwise."""
    ks = tuple(ks)
    if not ks or any(not isinstance(k, (int, np.integer)) or k < 1 for k in ks) or list(ks) != sorted(set(ks)):
        raise ValueError(f"ks must be increasing integers >= 1, e.g. 1,2,3,5,10,20; got {list(ks)}")
    return tuple(int(k) for k in ks)


def robust_accuracy(victim: Victim, images: np.ndarray, labels: np.ndarray,
                    config: AttackConfig | Callable[[int], AttackConfig],
                    ks: Sequence[int] = (1, 2, 3, 5, 10, 20), *, image_indices: Sequence[int] | None = None,
                    out: str | Path | None = None, run_info: dict[str, Any] | None = None,
                    on_k: Callable[[int, int], None] | None = None) -> Robustness:
    """Attacks the correctly classified images with k = ks[0], ks[1], ... pixels, each k
    only those no smaller k fooled.

    Args:
      victim, images, labels: as for `deattack.attack`.
      config: the attack at every k (its `pixels` is replaced by k), or k -> the attack
        (e.g. `lambda k: default_config(k)`, whose operator depends on k); untargeted, or
        targeted with one target an image (targets "random" or a class).
      ks: increasing pixel counts.
      image_indices: global ids of the images (default 0..N-1).
      out: optional folder; each k's results folder is OUT/k-K (resumable).
      run_info: extra facts for each k's config.json.
      on_k: called with (k, images to attack) before each k.

    Raises:
      ValueError: bad ks, or targets="all" (several problems an image: "fooled" would
        not be a property of the image).
    """
    ks = check_ks(ks)
    config_for = config if callable(config) else (lambda k: dataclasses.replace(config, pixels=k))
    first = config_for(ks[0])
    if first.mode == "targeted" and first.targets == "all":
        raise ValueError("robust accuracy needs one problem an image: use targets='random' or one class, "
                         "not targets='all'")
    images = np.asarray(images)
    labels = np.asarray(labels)
    indices = np.arange(len(images)) if image_indices is None else np.asarray(image_indices, np.int64)
    correct = np.argmax(predict(victim, images.astype(np.float32)), -1) == labels if len(images) else np.zeros(0, bool)
    smallest = np.where(correct, -1, 0).astype(np.int64)
    queries = np.zeros(len(images), np.int64)
    records: dict[int, list[dict[str, Any]]] = {}
    for k in ks:
        rows = np.flatnonzero(smallest == -1)
        if on_k is not None:
            on_k(k, len(rows))
        records[k] = []
        if not len(rows):
            continue
        result = attack(victim, images[rows], labels[rows], config_for(k),
                        image_indices=indices[rows], out=None if out is None else Path(out) / f"k-{k}",
                        run_info=run_info)
        position = {int(i): r for r, i in zip(rows, indices[rows])}
        for record in result.records:
            row = position.get(int(record["image_index"]))
            if row is None:  # a record of an image this call did not evaluate (an older run's folder)
                continue
            records[k].append(record)
            queries[row] += int(record["queries"])
            if record["success"]:
                smallest[row] = k
    accuracy = {k: float(((smallest == -1) | (smallest > k)).sum() / len(images)) if len(images) else 0.0
                for k in ks}
    return Robustness(ks, indices, correct, smallest, queries, accuracy, records)
