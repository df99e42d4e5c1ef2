"""Victim checkpoints: flax msgpack weights + a JSON metadata file beside them.

Loading never unpickles: msgpack holds only arrays, numbers and strings, and the
restored tree is checked leaf by leaf against the architecture's own tree, so a
corrupt, truncated or mismatched file is a clear `CheckpointError`, never a
half-loaded model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization
from flax.traverse_util import flatten_dict

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, truncated or does not fit the model."""


def paths_for(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights .msgpack, metadata .json) for a checkpoint given with or without suffix."""
    base = Path(path)
    if base.suffix in (".msgpack", ".json"):
        base = base.with_suffix("")
    return base.with_suffix(".msgpack"), base.with_suffix(".json")


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Writes via a temporary file and rename, so a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save(path: str | os.PathLike, tree: Any, metadata: dict[str, Any]) -> Path:
    """Saves a pytree of arrays and its metadata; returns the weights path."""
    weights_path, metadata_path = paths_for(path)
    payload = serialization.msgpack_serialize(serialization.to_state_dict(jax.device_get(tree)))
    full_metadata = dict(metadata, format_version=FORMAT_VERSION,
                         sha256=hashlib.sha256(payload).hexdigest(), weights_file=weights_path.name)
    atomic_write_bytes(weights_path, payload)
    atomic_write_bytes(metadata_path, (json.dumps(full_metadata, indent=2, sort_keys=True) + "\n").encode())
    return weights_path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    _, metadata_path = paths_for(path)
    if not metadata_path.is_file():
        raise CheckpointError(f"checkpoint metadata {metadata_path} does not exist")
    try:
        return json.loads(metadata_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint metadata {metadata_path} is not valid JSON: {error}") from None


def restore(path: str | os.PathLike, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restores a tree saved by `save` into the structure and shapes of `template`.

    Raises:
      CheckpointError: missing file, checksum mismatch (corrupt or truncated),
        undecodable msgpack, or a tree whose keys / shapes / dtypes differ from
        `template` (another architecture); the message names the first difference.
    """
    weights_path, _ = paths_for(path)
    metadata = read_metadata(path)
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint weights {weights_path} do not exist")
    payload = weights_path.read_bytes()
    expected = metadata.get("sha256")
    if expected and hashlib.sha256(payload).hexdigest() != expected:
        raise CheckpointError(
            f"checkpoint {weights_path} is corrupt or truncated: its sha256 does not match "
            f"the one recorded in {paths_for(path)[1].name}")
    try:
        state_dict = serialization.msgpack_restore(payload)
    except Exception as error:
        raise CheckpointError(f"checkpoint {weights_path} cannot be decoded: {error}") from None
    check_tree_matches(state_dict, serialization.to_state_dict(template), str(weights_path))
    return serialization.from_state_dict(template, state_dict), metadata


def check_tree_matches(loaded: Any, expected: Any, where: str) -> None:
    """Raises CheckpointError naming the first key, shape or dtype that differs."""
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{where}: expected a tree of arrays, found {type(loaded).__name__}")
    flat_loaded = flatten_dict(loaded, sep="/")
    flat_expected = flatten_dict(expected, sep="/")
    missing = sorted(set(flat_expected) - set(flat_loaded))
    extra = sorted(set(flat_loaded) - set(flat_expected))
    if missing or extra:
        raise CheckpointError(
            f"{where} does not fit this architecture: missing {missing[:5]}, unexpected {extra[:5]}")
    for key, want in flat_expected.items():
        got = flat_loaded[key]
        want_shape, got_shape = np.shape(want), np.shape(got)
        if want_shape != got_shape:
            raise CheckpointError(
                f"{where} does not fit this architecture: {key} has shape {got_shape}, "
                f"the model expects {want_shape}")
