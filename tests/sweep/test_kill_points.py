"""kill -9 the sweep at several seeded random points, inside a unit's transaction and
right after a commit, rerunning after each: the store ends with exactly the rows of
an uninterrupted run, none lost, none duplicated.

(test_store.py kills once at a moment chosen by time; here the points are exact.)
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import numpy as np

from deattack.sweep.grid import units_of
from tests.killing import run_and_kill
from tests.sweep import toy
from tests.sweep.conftest import table_rows

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "sweep" / "driver.py"


def _count(path: Path, sql: str) -> int:
    connection = sqlite3.connect(str(path))
    try:
        return int(connection.execute(sql).fetchone()[0])
    finally:
        connection.close()


def _images_with_rows(path: Path) -> set[tuple[str, int]]:
    connection = sqlite3.connect(str(path))
    try:
        return {(c, int(i)) for c, i in connection.execute("SELECT cell_id, image_index FROM results")}
    finally:
        connection.close()


def _images_of_committed_units(path: Path) -> set[tuple[str, int]]:
    connection = sqlite3.connect(str(path))
    try:
        return {(cell, int(i)) for cell, attacked in connection.execute("SELECT cell_id, attacked FROM units")
                for i in json.loads(attacked)}
    finally:
        connection.close()


def test_kills_inside_and_between_transactions_lose_and_duplicate_nothing(tmp_path, reference_store):
    store = tmp_path / "killed.sqlite"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"), PYTHONPATH=str(REPO),
               JAX_PLATFORMS="cpu")
    total_units = len(units_of(toy.CONFIG))
    rng = np.random.default_rng(5)
    # Each point is counted from the start of its process: the n-th unit it inserts or commits.
    plan = [f"inserted@{rng.integers(1, 3)}", f"committed@{rng.integers(1, 3)}", f"inserted@{rng.integers(1, 3)}"]
    units_after_kill = []
    for hang in plan:
        stop = run_and_kill([sys.executable, str(DRIVER), str(store), hang], REPO, env, expect_hang=True)
        assert stop.startswith(f"HANG {hang.split('@')[0]}"), stop
        units_after_kill.append(_count(store, "SELECT COUNT(*) FROM units"))
        # Whatever is in the store is right and whole: a unit's rows only with its units row.
        assert set(table_rows(store)) <= set(table_rows(reference_store))
        assert _images_with_rows(store) <= _images_of_committed_units(store)
    assert units_after_kill == sorted(units_after_kill) and 0 < units_after_kill[-1] < total_units, units_after_kill
    assert run_and_kill([sys.executable, str(DRIVER), str(store)], REPO, env, expect_hang=False) == "DONE"

    assert table_rows(store) == table_rows(reference_store)
    assert table_rows(store, "units") == table_rows(reference_store, "units")
    assert table_rows(store, "cells") == table_rows(reference_store, "cells")
    assert _count(store, "SELECT COUNT(*) FROM results") == _count(
        store, "SELECT COUNT(*) FROM (SELECT DISTINCT cell_id, image_index, target FROM results)")
    assert _count(store, "SELECT COUNT(*) FROM runs") == len(plan) + 1
    assert _count(store, "SELECT COUNT(*) FROM runs WHERE finished IS NULL") == len(plan)
