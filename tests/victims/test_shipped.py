"""Shipped victims load through the registry and reach the accuracy their metadata
records (and README and docs/victims.md quote): on all 10,000 test images, and on the
first 1,000."""

from __future__ import annotations

import json

import pytest

from deattack.victims.loading import CHECKPOINT_DIR, load_victim
from deattack.victims.victim import correctly_classified
from tests.support import requires_cifar10

SHIPPED = sorted(p.stem for p in CHECKPOINT_DIR.glob("*.json"))


def test_lenet_and_resnet20_are_shipped():
    assert {"lenet", "resnet20"} <= set(SHIPPED)


# Images whose class may flip between the training run's evaluation and this one (other
# batch sizes round logits differently): at most this many of 10,000.
FLIP_TOLERANCE = 3


@requires_cifar10
@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_accuracy_on_the_10000_test_images(name, cifar_test):
    metadata = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    victim = load_victim(name)
    assert victim.metadata["params"] == metadata["params"]
    images, labels = cifar_test
    assert len(labels) == 10_000
    correct = correctly_classified(victim, images, labels)
    assert abs(int(correct.sum()) - round(metadata["test_accuracy"] * 10_000)) <= FLIP_TOLERANCE
    assert abs(int(correct[:1000].sum()) - round(metadata["test_accuracy_first_1000"] * 1000)) <= FLIP_TOLERANCE
