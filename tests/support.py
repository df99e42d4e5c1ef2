"""Helpers shared by test modules (importable, unlike conftest)."""

from __future__ import annotations

import os

import pytest


def _has_cifar10() -> bool:
    from deattack.data import _prepared_version_dir, default_data_dir

    return _prepared_version_dir(default_data_dir()) is not None


requires_cifar10 = pytest.mark.skipif(
    not _has_cifar10() and os.environ.get("CI") != "true",
    reason="CIFAR-10 not prepared in TFDS_DATA_DIR (set TFDS_DATA_DIR; in CI this fails instead)")


