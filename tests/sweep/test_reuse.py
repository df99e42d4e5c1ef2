"""`deattack sweep --reuse OTHER`: an extended sweep (more seeds, operators, modes) copies
the finished units of the cells it shares with another store instead of running them,
and only when the cell, the victim's weights and the unit's images are the same."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from deattack.sweep.grid import units_of
from tests.sweep import toy
from tests.sweep.conftest import table_rows

# The toy sweep plus a second seed: its seed-0 cells are the toy sweep's cells exactly.
EXTENDED = dataclasses.replace(toy.CONFIG, name="toy-extended", seeds=(0, 1))


def _rows_of(path, cell_ids) -> list[tuple]:
    return [row for row in table_rows(path) if row[0] in cell_ids]


def test_an_extended_sweep_reuses_the_shared_cells_and_runs_the_rest(tmp_path, reference_store, run_toy):
    shared = {u.cell.cell_id for u in units_of(toy.CONFIG)}
    extended = tmp_path / "extended.sqlite"
    summary = run_toy(EXTENDED, extended, reuse=[reference_store])
    assert summary["units_reused"] == len(units_of(toy.CONFIG))
    assert summary["units_run"] == len(units_of(EXTENDED)) - len(units_of(toy.CONFIG)) > 0
    assert summary["units_resumed"] == 0
    assert _rows_of(extended, shared) == table_rows(reference_store)
    # ... and exactly what running them here would have written.
    fresh = tmp_path / "fresh.sqlite"
    run_toy(EXTENDED, fresh)
    assert table_rows(extended) == table_rows(fresh)
    assert table_rows(extended, "units") == table_rows(fresh, "units")
    again = run_toy(EXTENDED, extended, reuse=[reference_store])  # a rerun: nothing left to copy
    assert (again["units_reused"], again["units_run"]) == (0, 0)


def test_a_cell_whose_victim_changed_is_run_again(tmp_path, reference_store, run_toy):
    import shutil

    other = tmp_path / "other-weights.sqlite"
    shutil.copy(reference_store, other)
    connection = sqlite3.connect(other)
    connection.execute("UPDATE cells SET victim_sha256 = 'another model'")
    connection.commit()
    connection.close()
    summary = run_toy(toy.CONFIG, tmp_path / "s.sqlite", reuse=[other])
    assert summary["units_reused"] == 0 and summary["units_run"] == len(units_of(toy.CONFIG))


def test_another_chunking_of_the_same_cells_is_run_again(tmp_path, reference_store, run_toy):
    """chunk_images is not part of a cell's id: chunk k of 3 images is not chunk k of 2."""
    rechunked = dataclasses.replace(toy.CONFIG, chunk_images=3)
    summary = run_toy(rechunked, tmp_path / "s.sqlite", reuse=[reference_store])
    assert summary["units_reused"] == 0 and summary["units_run"] == len(units_of(rechunked))


@pytest.mark.parametrize("which, message", [("missing", "no such store"), ("itself", "the store itself")])
def test_bad_reuse_paths_are_named_before_any_work(tmp_path, run_toy, which, message):
    store = tmp_path / "s.sqlite"
    path = tmp_path / "nothing.sqlite" if which == "missing" else store
    if which == "itself":
        run_toy(toy.CONFIG, store)
    with pytest.raises(ValueError, match=message):
        run_toy(toy.CONFIG, store, reuse=[path])


def test_reuse_only_assembles_the_shared_cells_and_leaves_the_rest_pending(tmp_path, reference_store, run_toy):
    shared = {u.cell.cell_id for u in units_of(toy.CONFIG)}
    assembled = tmp_path / "assembled.sqlite"
    summary = run_toy(EXTENDED, assembled, reuse=[reference_store], reuse_only=True)
    assert (summary["units_reused"], summary["units_run"]) == (len(units_of(toy.CONFIG)), 0)
    assert summary["units_pending"] == len(units_of(EXTENDED)) - len(units_of(toy.CONFIG)) > 0
    assert _rows_of(assembled, shared) == table_rows(reference_store)
    assert table_rows(assembled) == table_rows(reference_store)  # nothing else was run
    finished = run_toy(EXTENDED, assembled)  # a later plain run does the pending units
    assert (finished["units_run"], finished["units_pending"]) == (summary["units_pending"], 0)
    with pytest.raises(ValueError, match="at least one --reuse"):
        run_toy(EXTENDED, tmp_path / "none.sqlite", reuse_only=True)
    assert not (tmp_path / "none.sqlite").exists()
