"""Helpers shared by test modules (importable, unlike conftest)."""

from __future__ import annotations

import contextlib
import os

import jax
import numpy as np
import pytest


def _has_cifar10() -> bool:
    from deattack.data import _prepared_version_dir, default_data_dir

    return _prepared_version_dir(default_data_dir()) is not None


requires_cifar10 = pytest.mark.skipif(
    not _has_cifar10() and os.environ.get("CI") != "true",
    reason="CIFAR-10 not prepared in TFDS_DATA_DIR (set TFDS_DATA_DIR; in CI this fails instead)")


def strict_numerics(rank_promotion: str = "raise") -> contextlib.ExitStack:
    """STYLE.md's strict numerics: implicit dtype promotion raises, and rank promotion
    unless allowed (the attack's population initialisers need it allowed)."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.numpy_rank_promotion(rank_promotion))
    stack.enter_context(jax.numpy_dtype_promotion("strict"))
    return stack


def forbid_work(monkeypatch, before: str) -> None:
    """Loading a victim or a dataset, or starting a sweep's units, fails the test with
    "work started <before>": a bad input must be refused before any of them."""
    def work(*args, **kwargs):
        raise AssertionError(f"work started {before}")

    monkeypatch.setattr("deattack.victims.loading.load_victim", work)
    monkeypatch.setattr("deattack.data.load_split", work)
    monkeypatch.setattr("deattack.sweep.run._load_victims", work)


def numpy_write_pixels(image: np.ndarray, pixels) -> np.ndarray:
    """The test's own transcription of the pixel convention, independent of the package:
    a record's integer pixels [[x, y, r, g, b], ...] written into a float64 copy, pixel
    (x, y) at image[y, x] (x = column, y = row), a later pixel at the same place winning."""
    out = np.array(image, np.float64)
    for x, y, r, g, b in pixels:
        out[y, x] = (r, g, b)
    return out
