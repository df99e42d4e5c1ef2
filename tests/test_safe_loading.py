"""Checkpoints (msgpack + JSON) and stores (JSONL, SQLite) are read without unpickling:
a file carrying a pickle payload is refused with a clear error and its payload never
runs. Also: a checkpoint pair torn by a kill mid-save still loads the committed weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
import pytest

from deattack import checkpoint
from deattack.attack.results import RESULTS_FILE, ResultsFolder
from deattack.models import get_model
from deattack.sweep.store import Store, StoreError
from deattack.victims.loading import load_victim

PACKAGE = Path(__file__).resolve().parents[1] / "deattack"


class _Payload:
    """Unpickling this creates the file `marker`: proof that a loader unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickled(tmp_path) -> tuple[bytes, Path]:
    marker = tmp_path / "unpickled"
    return pickle.dumps({"params": _Payload(marker)}), marker


def _lenet():
    variables = get_model("lenet").init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path):
    payload, marker = _pickled(tmp_path)
    (tmp_path / "net.msgpack").write_bytes(payload)
    # Even with a matching checksum (an attacker controls both files).
    (tmp_path / "net.json").write_text(json.dumps({"model": "lenet", "sha256": hashlib.sha256(payload).hexdigest()}))
    with pytest.raises(checkpoint.CheckpointError, match="net.msgpack cannot be decoded"):
        load_victim(str(tmp_path / "net"))
    (tmp_path / "net.json").write_text(json.dumps({"model": "lenet"}))
    with pytest.raises(checkpoint.CheckpointError, match="cannot be decoded"):
        load_victim(str(tmp_path / "net"))
    assert not marker.exists()


def test_metadata_with_a_pickle_payload_is_refused(tmp_path):
    payload, marker = _pickled(tmp_path)
    checkpoint.save(tmp_path / "net", _lenet(), {"model": "lenet"})
    (tmp_path / "net.json").write_bytes(payload)
    with pytest.raises(checkpoint.CheckpointError, match="net.json is not valid JSON"):
        load_victim(str(tmp_path / "net"))
    (tmp_path / "net.json").write_text("[1, 2]")
    with pytest.raises(checkpoint.CheckpointError, match="net.json is not a JSON object"):
        load_victim(str(tmp_path / "net"))
    assert not marker.exists()


def test_msgpack_array_of_python_objects_is_refused(tmp_path):
    """flax's msgpack array extension with dtype 'object' (what a pickle-backed array would need)."""
    fake = msgpack.ExtType(1, msgpack.packb(((2,), "object", b"\0" * 16)))
    (tmp_path / "net.msgpack").write_bytes(msgpack.packb({"params": fake}))
    (tmp_path / "net.json").write_text('{"model": "lenet"}')
    with pytest.raises(checkpoint.CheckpointError, match="cannot be decoded"):
        load_victim(str(tmp_path / "net"))


def test_weights_of_another_dtype_are_refused(tmp_path):
    half = jax.tree.map(lambda leaf: np.asarray(leaf, np.float16), _lenet())
    checkpoint.save(tmp_path / "net", half, {"model": "lenet"})
    with pytest.raises(checkpoint.CheckpointError, match="has dtype float16, the model expects float32"):
        load_victim(str(tmp_path / "net"))


def test_sqlite_store_with_a_pickle_payload_is_refused(tmp_path):
    payload, marker = _pickled(tmp_path)
    (tmp_path / "s.sqlite").write_bytes(payload)
    with pytest.raises(StoreError, match="not a usable SQLite results store"):
        Store(tmp_path / "s.sqlite", create=False)
    assert not marker.exists()


def test_jsonl_line_with_a_pickle_payload_is_dropped_not_loaded(tmp_path):
    payload, marker = _pickled(tmp_path)
    record = {"image_index": 0, "target": -1, "success": True, "queries": 5}
    ResultsFolder(tmp_path, {"attack": {}}).append([record])
    with open(tmp_path / RESULTS_FILE, "ab") as stream:
        stream.write(payload + b"\n")
    reopened = ResultsFolder(tmp_path, {"attack": {}})
    assert reopened.records == [record]  # the torn/foreign tail is truncated, recomputed on resume
    assert (tmp_path / RESULTS_FILE).read_bytes() == (json.dumps(record, sort_keys=True) + "\n").encode()
    assert not marker.exists()


def test_the_package_never_unpickles():
    """No reader in deattack/ uses pickle or anything built on it."""
    unsafe = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|dill|cloudpickle|joblib|shelve|marshal)\b"
                        r"|allow_pickle\s*=\s*True|torch\.load|yaml\.load\(|yaml\.unsafe_load", re.MULTILINE)
    offenders = [f"{path.relative_to(PACKAGE.parent)}: {match.group(0).strip()}"
                 for path in sorted(PACKAGE.rglob("*.py")) for match in unsafe.finditer(path.read_text())]
    assert not offenders, offenders


# --- a save torn by a kill ------------------------------------------------------------

def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_torn_save_loads_the_committed_pair(tmp_path):
    """save() writes NAME.msgpack.pending, then the metadata (the commit point), then renames
    the weights. A kill before the commit leaves the old pair; after it, the new metadata
    with its weights still pending. Either way restore() returns a consistent checkpoint."""
    old, new = _lenet(), jax.tree.map(lambda leaf: leaf + 1, _lenet())
    path = tmp_path / "net"
    checkpoint.save(path, new, {"model": "lenet", "version": "new"})
    new_weights, new_metadata = (p.read_bytes() for p in checkpoint.paths_for(path))
    checkpoint.save(path, old, {"model": "lenet", "version": "old"})
    weights_path, metadata_path = checkpoint.paths_for(path)
    pending = checkpoint.pending_path(weights_path)
    assert not pending.exists()

    pending.write_bytes(new_weights)  # killed before the commit: the old pair holds
    restored, metadata = checkpoint.restore(path, old)
    assert metadata["version"] == "old" and _leaves_equal(restored, old)

    old_weights = weights_path.read_bytes()
    metadata_path.write_bytes(new_metadata)  # killed after the commit, before the rename
    restored, metadata = checkpoint.restore(path, old)
    assert metadata["version"] == "new" and _leaves_equal(restored, new)
    # ... and loading finished the save: no stale weights left beside their metadata
    assert not pending.exists() and weights_path.read_bytes() == new_weights
    assert load_victim(str(path)).metadata["version"] == "new"

    weights_path.write_bytes(old_weights)  # killed after the commit again,
    pending.write_bytes(new_weights[:100])  # ... and the pending copy damaged: refused, not loaded
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or truncated"):
        checkpoint.restore(path, old)
    os.remove(pending)
