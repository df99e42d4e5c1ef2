"""Shared fixtures of the sweep tests: strict numerics (as tests/attack, rank promotion
allowed because the attack's population initialisers need it), the toy victim and
images (toy.py), and one uninterrupted toy sweep that several tests compare against.
"""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from deattack.sweep.run import run_sweep
from tests import support
from tests.sweep import toy


def numerics() -> contextlib.ExitStack:
    return support.strict_numerics("allow")


@pytest.fixture(autouse=True)
def strict_numerics():
    with numerics():
        yield


@pytest.fixture(scope="session")
def toy_inputs() -> dict:
    return toy.sweep_inputs()


@pytest.fixture(scope="session")
def run_toy(toy_inputs):
    """run_sweep on the toy victim and images (session fixtures need the numerics here:
    they are part of jit's cache key, so every run shares the compilations)."""

    def run(config, store, **kwargs):
        with numerics():
            return run_sweep(config, store, **toy_inputs, **kwargs)

    return run


@pytest.fixture(scope="session")
def reference_store(tmp_path_factory, run_toy):
    """The toy sweep, uninterrupted and unsharded."""
    path = tmp_path_factory.mktemp("reference") / "toy.sqlite"
    run_toy(toy.CONFIG, path, command="reference")
    return path


def table_rows(path, table: str = "results") -> list[tuple]:
    """A table's rows in key order, without timing columns."""
    queries = {
        "results": "SELECT * FROM results ORDER BY cell_id, image_index, target",
        "units": "SELECT cell_id, chunk, n_selected, n_attacked, attacked, n_records FROM units "
                 "ORDER BY cell_id, chunk",
        "cells": "SELECT cell_id, position, victim, model, victim_sha256, victim_metadata, config, "
                 "units_total, status FROM cells ORDER BY position",
    }
    connection = sqlite3.connect(str(path))
    try:
        return [tuple(row) for row in connection.execute(queries[table])]
    finally:
        connection.close()
