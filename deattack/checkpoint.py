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


def pending_path(weights_path: Path) -> Path:
    """Where `save` puts new weights until their metadata is committed."""
    return weights_path.with_name(weights_path.name + ".pending")


def save(path: str | os.PathLike, tree: Any, metadata: dict[str, Any]) -> Path:
    """Saves a pytree of arrays and its metadata; returns the weights path.

    The pair is replaced in an order that a kill at any moment cannot tear: the new
    weights go to NAME.msgpack.pending, then the metadata naming their sha256 replaces
    the old metadata (the commit point), then the weights are renamed into place. A
    kill before the commit leaves the old pair; one after it leaves the new metadata
    with its weights still pending, which `restore` reads.
    """
    weights_path, metadata_path = paths_for(path)
    payload = serialization.msgpack_serialize(serialization.to_state_dict(jax.device_get(tree)))
    full_metadata = dict(metadata, format_version=FORMAT_VERSION,
                         sha256=hashlib.sha256(payload).hexdigest(), weights_file=weights_path.name)
    pending = pending_path(weights_path)
    atomic_write_bytes(pending, payload)
    atomic_write_bytes(metadata_path, (json.dumps(full_metadata, indent=2, sort_keys=True) + "\n").encode())
    os.replace(pending, weights_path)
    return weights_path


def exists(path: str | os.PathLike) -> bool:
    """Whether a checkpoint was committed at `path` (its metadata is the commit point)."""
    return paths_for(path)[1].is_file()


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    _, metadata_path = paths_for(path)
    if not metadata_path.is_file():
        raise CheckpointError(f"checkpoint metadata {metadata_path} does not exist")
    try:
        metadata = json.loads(metadata_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint metadata {metadata_path} is not valid JSON: {error}") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint metadata {metadata_path} is not a JSON object")
    return metadata


def _committed_payload(weights_path: Path, expected: str | None) -> bytes:
    """The weights bytes the metadata's sha256 names: NAME.msgpack, or NAME.msgpack.pending
    when a save was killed between committing the metadata and renaming the weights."""
    candidates = [weights_path, pending_path(weights_path)] if expected else [weights_path]
    present = [candidate for candidate in candidates if candidate.is_file()]
    if not present:
        raise CheckpointError(f"checkpoint weights {weights_path} do not exist")
    for candidate in present:
        payload = candidate.read_bytes()
        if not expected or hashlib.sha256(payload).hexdigest() == expected:
            if candidate != weights_path:
                _finish_interrupted_save(candidate, weights_path)
            return payload
    raise CheckpointError(
        f"checkpoint {weights_path} is corrupt or truncated: its sha256 does not match "
        f"the one recorded in {weights_path.with_suffix('.json').name}")


def _finish_interrupted_save(pending: Path, weights_path: Path) -> None:
    """Renames committed pending weights into place, as the killed save would have, so no
    stale NAME.msgpack outlives its metadata. A read-only folder just keeps the pair as is:
    loading reads the pending file either way."""
    try:
        os.replace(pending, weights_path)
    except OSError:
        pass


def restore(path: str | os.PathLike, template: Any) -> tuple[Any, dict[str, Any]]:
    """Restores a tree saved by `save` into the structure and shapes of `template`.

    Raises:
      CheckpointError: missing file, checksum mismatch (corrupt or truncated),
        undecodable msgpack, or a tree whose keys / shapes / dtypes differ from
        `template` (another architecture); the message names the first difference.
    """
    weights_path, _ = paths_for(path)
    metadata = read_metadata(path)
    payload = _committed_payload(weights_path, metadata.get("sha256"))
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
        want_dtype, got_dtype = np.asarray(want).dtype, np.asarray(got).dtype
        if want_dtype != got_dtype:
            raise CheckpointError(
                f"{where} does not fit this architecture: {key} has dtype {got_dtype}, "
                f"the model expects {want_dtype}")
