"""Checkpoints round-trip bit-exactly; corrupt, truncated and mismatched files fail clearly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack import checkpoint
from deattack.models import get_model
from deattack.victims.loading import load_victim


def _variables(name="lenet", seed=0):
    variables = get_model(name).init(jax.random.key(seed), jnp.zeros((1, 32, 32, 3)))
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def test_round_trip_is_bit_exact(tmp_path):
    original = _variables("resnet20", seed=3)
    checkpoint.save(tmp_path / "net", original, {"model": "resnet20"})
    restored, metadata = checkpoint.restore(tmp_path / "net", _variables("resnet20", seed=9))
    for a, b in zip(jax.tree.leaves(original), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert metadata["model"] == "resnet20" and len(metadata["sha256"]) == 64
    victim = load_victim(str(tmp_path / "net"))
    assert victim.name == "resnet20"


def test_corrupt_and_truncated_files(tmp_path):
    path = checkpoint.save(tmp_path / "net", _variables(), {"model": "lenet"})
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or truncated"):
        load_victim(str(tmp_path / "net"))
    path.write_bytes(bytes(payload[: len(payload) // 3]))
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or truncated"):
        load_victim(str(tmp_path / "net"))


def test_wrong_architecture(tmp_path):
    checkpoint.save(tmp_path / "net", _variables("lenet"), {"model": "lenet"})
    with pytest.raises(checkpoint.CheckpointError, match="does not fit"):
        load_victim(str(tmp_path / "net"), model="resnet20")


def test_missing_and_garbage_metadata(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        load_victim(str(tmp_path / "nothing"))
    checkpoint.save(tmp_path / "net", _variables(), {"model": "lenet"})
    (tmp_path / "net.json").write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="not valid JSON"):
        load_victim(str(tmp_path / "net"))


def test_msgpack_payload_that_is_not_a_tree(tmp_path):
    from flax import serialization

    (tmp_path / "net.msgpack").write_bytes(serialization.msgpack_serialize({"params": 3}))
    (tmp_path / "net.json").write_text('{"model": "lenet"}')
    with pytest.raises(checkpoint.CheckpointError, match="does not fit"):
        load_victim(str(tmp_path / "net"))
