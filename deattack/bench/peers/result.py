"""One attack's per-image outcome in the benchmark, whoever ran it: the same shape for
deattack and every peer, so ratios are taken between like things."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class AttackRun:
    """Per-image success, queries and wall time of one attack on N images.

    Attributes:
      name: "deattack", "scipy", "torchattacks" or "art".
      success: bool [N], judged by the JAX victim on the returned image (one judge for all).
      queries: int [N], images the victim evaluated for that image (counted at the forward).
      wall_s: float [N], seconds per image (deattack attacks its images together: its
        total wall time split evenly).
      settings: how the attack was configured (population, generations, strategy...).
    """

    name: str
    success: np.ndarray
    queries: np.ndarray
    wall_s: np.ndarray
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        sizes = {len(self.success), len(self.queries), len(self.wall_s)}
        if len(sizes) != 1:
            raise ValueError(f"{self.name}: success, queries and wall_s must have one entry per image, got {sizes}")

    def summary(self) -> dict[str, Any]:
        total_wall = float(np.sum(self.wall_s))
        total_queries = int(np.sum(self.queries))
        return {
            "images": int(len(self.success)),
            "success_rate": round(float(np.mean(self.success)), 4) if len(self.success) else 0.0,
            "queries_median": float(np.median(self.queries)) if len(self.queries) else 0.0,
            "queries_mean": round(float(np.mean(self.queries)), 1) if len(self.queries) else 0.0,
            "queries_total": total_queries,
            "wall_per_image_s": round(total_wall / max(len(self.wall_s), 1), 4),
            "queries_per_s": round(total_queries / total_wall, 1) if total_wall > 0 else None,
            **self.settings,
        }


def speedup(reference: AttackRun, peer: AttackRun) -> dict[str, float]:
    """How much faster `reference` finishes the same images than `peer`, and why.

    speedup = peer wall / reference wall
            = (reference queries/s / peer queries/s) x (peer queries / reference queries):
    the first factor is evaluation speed (forward, host work), the second spending
    fewer queries (operators, early stop).
    """
    ours, theirs = reference.summary(), peer.summary()
    if not ours["queries_total"] or not theirs["queries_total"] or ours["wall_per_image_s"] <= 0:
        raise ValueError(f"cannot compare {reference.name} with {peer.name}: no queries or no time measured")
    return {
        "speedup": round(theirs["wall_per_image_s"] / ours["wall_per_image_s"], 3),
        "from_queries_per_s": round(ours["queries_per_s"] / theirs["queries_per_s"], 3),
        "from_fewer_queries": round(theirs["queries_total"] / ours["queries_total"], 3),
    }
