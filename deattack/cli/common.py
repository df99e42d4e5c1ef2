"""Helpers every command group shares: the default TFDS data folder and the command line
as typed (recorded in stores, logs and report headers)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path


def default_data_dir() -> None:
    """Points tfds at ../shared/tensorflow_datasets beside the repo when that exists."""
    if "TFDS_DATA_DIR" not in os.environ:
        candidate = Path(__file__).resolve().parents[3] / "shared" / "tensorflow_datasets"
        if candidate.is_dir():
            os.environ["TFDS_DATA_DIR"] = str(candidate)


def command_line(args) -> str:
    """The command as typed (recorded in the store, the log and report headers)."""
    argv = getattr(args, "argv", None)
    return " ".join(shlex.quote(a) for a in ["deattack", *(sys.argv[1:] if argv is None else argv)])
