"""Output locations are checked before any work starts.

A sweep or training run that can only write its first result after an hour of
compilation and compute, into a folder it cannot write or onto a full disk, should
fail in a second with a message naming the folder. `deattack attack --out`,
`deattack sweep` (store and log) and `deattack train --workdir/--out` call
`check_output_dir` before they load a victim or a dataset. The check creates nothing: a
run that then fails (a bad victim, nothing to attack) leaves no empty folder behind; the
run creates its folder when it first writes there.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

# Room a run needs at the least: results and checkpoints are small (a ResNet-20
# training state is ~3 MB), so this only catches a disk that is (nearly) full.
MIN_FREE_BYTES = 64 * 2**20
_PROBE_BYTES = 4096


class OutputError(ValueError):
    """An output folder cannot be created or written, or its disk is (nearly) full."""


def free_bytes(folder: str | os.PathLike) -> int:
    """Bytes available to this user on the file system holding `folder`."""
    return shutil.disk_usage(folder).free


def _probe_write(folder: Path) -> None:
    """Creates, writes, fsyncs and removes a small file: what a run will do first."""
    probe = folder / f".deattack-write-test-{os.getpid()}"
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, b"\0" * _PROBE_BYTES)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
        probe.unlink(missing_ok=True)


def _nearest_existing(folder: Path) -> Path:
    """`folder` if it exists, else its nearest ancestor that does (the one a run's mkdir
    would create the missing folders in)."""
    # A relative path's last parent is ".", an absolute one's the root: one of them exists.
    return next((candidate for candidate in (folder, *folder.parents) if candidate.exists()), Path("."))


def check_output_dir(folder: str | os.PathLike, what: str = "output folder",
                     min_free_bytes: int = MIN_FREE_BYTES) -> Path:
    """Checks `folder` can be created (if missing) and written and has room; creates nothing.

    A missing folder is checked on its nearest existing ancestor: whoever may create and
    write a file there may create the folders below it.

    Args:
      folder: the folder a command will write into.
      what: how the message names it, e.g. "--out folder" or "sweep store folder".
      min_free_bytes: the least free space accepted on its file system.

    Returns:
      The folder as a Path.

    Raises:
      OutputError (a ValueError): the folder cannot be created (e.g. a parent is a
        file), cannot be written (permissions, read-only file system), or its disk is
        full or has less than `min_free_bytes` free.
    """
    folder = Path(folder)
    existing = _nearest_existing(folder)
    if existing == folder and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file, not a folder: name a folder")
    if not existing.is_dir():
        raise OutputError(f"{what} {folder} is not writable: it cannot be created ({existing} is not a folder)")
    where = "" if existing == folder else f" (it would be created in {existing})"
    try:
        _probe_write(existing)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(f"{what} {folder}: the disk is full ({error.strerror}); "
                              "free some space or choose another folder") from None
        raise OutputError(f"{what} {folder} is not writable: {error.strerror or error}{where}") from None
    free = free_bytes(existing)
    if free < min_free_bytes:
        raise OutputError(
            f"{what} {folder}: only {free / 2**20:.1f} MiB free on its disk, at least "
            f"{min_free_bytes / 2**20:.0f} MiB needed; free some space or choose another folder")
    return folder


def check_output_file(path: str | os.PathLike, what: str = "output file",
                      min_free_bytes: int = MIN_FREE_BYTES) -> Path:
    """`check_output_dir` on the folder that will hold the file `path`."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder, not a file")
    check_output_dir(path.parent, f"folder of the {what} {path}", min_free_bytes)
    return path
