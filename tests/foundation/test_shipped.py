"""Shipped victims load through the registry and reach their recorded accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deattack.victims.loading import CHECKPOINT_DIR, load_victim
from deattack.victims.victim import correctly_classified
from tests.support import requires_cifar10

SHIPPED = sorted(p.stem for p in CHECKPOINT_DIR.glob("*.json"))


def test_lenet_and_resnet20_are_shipped():
    assert {"lenet", "resnet20"} <= set(SHIPPED)


@requires_cifar10
@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_accuracy_on_first_1000_test_images(name, cifar_test):
    metadata = json.loads((CHECKPOINT_DIR / f"{name}.json").read_text())
    victim = load_victim(name)
    assert victim.metadata["params"] == metadata["params"]
    images, labels = cifar_test
    accuracy = float(np.mean(correctly_classified(victim, images[:1000], labels[:1000])))
    assert abs(accuracy - metadata["test_accuracy_first_1000"]) <= 0.01
