"""Victim.from_torch (issue 28): lenet's torch port (deattack.bench.peers.torch_port, the
same function on the same weights) attacked through the batched host callback gives the
JAX victim's records for the same seed: identical successes, pixels and queries, and
confidences equal to float tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from deattack.attack import AttackConfig, attack
from deattack.victims.loading import load_victim
from deattack.victims.victim import Victim, correctly_classified
from tests.support import requires_cifar10

torch = pytest.importorskip("torch")

CONFIG = AttackConfig(pixels=1, population_size=20, max_generations=4, init="corners", slots=4, seed=1)


@requires_cifar10
def test_torch_lenet_gives_the_jax_lenets_records(cifar_test):
    from deattack.bench.peers.torch_port import port

    images, labels = cifar_test
    jax_victim = load_victim("lenet")
    chosen = np.flatnonzero(correctly_classified(jax_victim, images[:12], labels[:12]))[:5]
    module = port(jax_victim)
    victim = Victim.from_torch(module, name="lenet-torch", input_range=(0, 255))
    assert victim.apply_fn.num_classes == 10
    ours = attack(victim, images[chosen], labels[chosen], CONFIG, image_indices=chosen)
    theirs = attack(jax_victim, images[chosen], labels[chosen], CONFIG, image_indices=chosen)
    assert len(ours.records) == len(theirs.records) == len(chosen)
    for a, b in zip(ours.records, theirs.records):
        assert (a["image_index"], a["success"], a["pixels"], a["queries"]) == \
               (b["image_index"], b["success"], b["pixels"], b["queries"])
        np.testing.assert_allclose(a["adversarial_confidence"], b["adversarial_confidence"], atol=1e-4)
    assert victim.apply_fn.ledger.images >= sum(r["queries"] for r in ours.records)


def test_from_torch_without_a_linear_layer_needs_num_classes():
    with pytest.raises(ValueError, match="pass num_classes"):
        Victim.from_torch(torch.nn.Flatten())
