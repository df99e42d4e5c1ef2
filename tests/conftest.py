"""Shared test setup: CIFAR-10 from ../shared/tensorflow_datasets when present, and
fixtures for the shipped victims."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_SHARED_DATA = REPO.parent / "shared" / "tensorflow_datasets"
if "TFDS_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["TFDS_DATA_DIR"] = str(_SHARED_DATA)

from tests.support import requires_cifar10  # noqa: E402,F401  (after TFDS_DATA_DIR is set)


@pytest.fixture(scope="session")
def cifar_test():
    from deattack import data

    return data.load_split("test")
