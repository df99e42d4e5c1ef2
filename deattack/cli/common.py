"""Helpers every command group shares: loading a config file with --set applied, and
the command line as typed (recorded in stores, logs and report headers)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from deattack import config_files
from deattack.overrides import apply_overrides


def command_line(args) -> str:
    """The command as typed (recorded in the store, the log and report headers)."""
    argv = getattr(args, "argv", None)
    return " ".join(shlex.quote(a) for a in ["deattack", *(sys.argv[1:] if argv is None else argv)])


def load_config(spec: str, expected: type, assignments: Sequence[str] = ()):
    """`configs/FILE.py[:variant]`, which must return an `expected`, with `--set key=value`s
    applied; ValueError naming the problem otherwise."""
    return apply_overrides(config_files.load(spec, expected), assignments)


def read_note(path: str | None) -> str:
    """The text of a report's --note FILE ("" without one)."""
    if path is None:
        return ""
    if not Path(path).is_file():
        raise ValueError(f"--note {path}: no such file")
    return Path(path).read_text()
