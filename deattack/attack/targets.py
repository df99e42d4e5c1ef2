"""The one rule for targeted attacks with targets="random": each image's target is drawn
from its own stream, keyed by (seed, image index), so it does not depend on the batch,
the order or the machine. The attack, the sweep and the benchmark all call it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Recorded in sweep cell keys: a change of the rule must change the cells it affects.
RANDOM_TARGET_RULE = "numpy default_rng([seed, image_index]).integers(C - 1), skipping the label"


def random_targets(seed: int, image_indices: Sequence[int], labels: Sequence[int],
                   num_classes: int) -> np.ndarray:
    """One random class other than the label for each image, from its own stream
    (RANDOM_TARGET_RULE), so a target does not depend on the chunking."""
    targets = []
    for index, label in zip(image_indices, labels):
        choice = int(np.random.default_rng([int(seed), int(index)]).integers(num_classes - 1))
        targets.append(choice + (choice >= int(label)))
    return np.asarray(targets, np.int64)
