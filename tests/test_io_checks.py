"""An output folder that cannot be written, or a full disk, is a clear error before any
work starts: for `deattack attack --out`, `deattack sweep` and `deattack train`."""

from __future__ import annotations

import errno
import os

import pytest

from deattack import io_checks
from deattack.cli import main as cli
from deattack.io_checks import OutputError, check_output_dir
from tests.support import forbid_work


def _blocked(tmp_path):
    """A folder path below a regular file: it can never be created (even by root)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "out"


def test_folder_below_a_file_is_not_writable(tmp_path):
    with pytest.raises(OutputError, match=r"--out folder .*a-file/out is not writable: it cannot be created"):
        check_output_dir(_blocked(tmp_path), "--out folder")


def test_checking_creates_nothing(tmp_path):
    """Issue 27 item 10: a run that fails after the check (a bad --model, nothing to attack)
    must not leave an empty folder behind; the run creates it when it first writes."""
    folder = tmp_path / "new" / "out"
    assert check_output_dir(folder) == folder
    assert not list(tmp_path.iterdir())
    existing = tmp_path / "existing"
    existing.mkdir()
    assert check_output_dir(existing / "a" / "b") == existing / "a" / "b"
    assert not list(existing.iterdir())


@pytest.mark.parametrize("code, message", [(errno.EACCES, "is not writable: Permission denied"),
                                           (errno.EROFS, "is not writable: Read-only file system"),
                                           (errno.ENOSPC, "the disk is full"),
                                           (errno.EDQUOT, "the disk is full")])
def test_failed_probe_write_names_the_cause(tmp_path, monkeypatch, code, message):
    def failing_write(descriptor, payload):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(io_checks.os, "write", failing_write)
    with pytest.raises(OutputError, match=message):
        check_output_dir(tmp_path / "out", "output folder")
    assert not list(tmp_path.iterdir())  # the probe file is removed, and nothing is created


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_dir(folder)
    finally:
        folder.chmod(0o755)


def test_nearly_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(io_checks, "free_bytes", lambda folder: 3 * 2**20)
    with pytest.raises(OutputError, match=r"only 3\.0 MiB free on its disk, at least 64 MiB needed"):
        check_output_dir(tmp_path / "out")
    assert check_output_dir(tmp_path / "out", min_free_bytes=2**20) == tmp_path / "out"


def _commands(folder):
    return {
        "attack --out": ["attack", "--model", "lenet", "--images", "2", "--out", str(folder)],
        "sweep --store": ["sweep", "configs/sweep_smoke.py", "--store", str(folder / "smoke.sqlite")],
        "sweep --log": ["sweep", "configs/sweep_smoke.py", "--store", str(folder.parent.parent / "s.sqlite"),
                        "--log", str(folder / "run.log")],
        "train --workdir": ["train", "--model", "lenet", "--epochs", "1", "--workdir", str(folder),
                            "--out", str(folder.parent.parent / "export")],
        "train --out": ["train", "--model", "lenet", "--epochs", "1", "--workdir",
                        str(folder.parent.parent / "workdir"), "--out", str(folder / "lenet")],
    }


@pytest.mark.parametrize("command", ["attack --out", "sweep --store", "sweep --log", "train --workdir",
                                     "train --out"])
def test_cli_unwritable_output_exits_2_before_work(tmp_path, monkeypatch, capsys, command):
    forbid_work(monkeypatch, "before the output folder was checked")
    folder = _blocked(tmp_path)
    assert cli.main(_commands(folder)[command]) == 2
    error = capsys.readouterr().err
    assert "error:" in error and str(folder) in error and "not writable" in error, error


@pytest.mark.parametrize("command", ["attack --out", "sweep --store", "train --workdir"])
def test_cli_full_disk_exits_2_before_work(tmp_path, monkeypatch, capsys, command):
    forbid_work(monkeypatch, "before the output folder was checked")
    monkeypatch.setattr(io_checks, "free_bytes", lambda folder: 0)
    assert cli.main(_commands(tmp_path / "a" / "b")[command]) == 2
    assert "only 0.0 MiB free" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["attack --out", "sweep --store", "sweep --log", "train --workdir",
                                     "train --out"])
def test_cli_failing_after_the_output_check_leaves_no_folder(tmp_path, monkeypatch, command):
    """The output is checked first; when the work then fails (here: as soon as it starts),
    no empty output folder, or new parent of one, is left behind."""
    forbid_work(monkeypatch, "after the output check")
    with pytest.raises(AssertionError, match="work started after the output check"):
        cli.main(_commands(tmp_path / "new" / "deep")[command])
    assert not list(tmp_path.iterdir())
