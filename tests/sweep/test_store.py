"""The results store: resume after kill -9, shards + merge == unsharded, merge refusals,
reruns that recompute nothing, export."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from deattack.sweep.grid import units_of
from deattack.sweep.merge import export, merge
from deattack.sweep.store import Store, StoreError
from tests.killing import run_and_kill
from tests.sweep import toy
from tests.sweep.conftest import table_rows

REPO = Path(__file__).resolve().parents[2]


def _units_in(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return int(connection.execute("SELECT COUNT(*) FROM units").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path, reference_store):
    """kill -9 the sweep process right after its first unit is committed, rerun the same
    command: the store equals an uninterrupted run's and the rerun logs that it resumed.

    The driver announces the commit and waits to be killed there: polling the store for
    the commit instead raced the process, which sometimes finished first."""
    store = tmp_path / "resumed.sqlite"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"), PYTHONPATH=str(REPO))
    command = [sys.executable, str(REPO / "tests" / "sweep" / "driver.py"), str(store)]
    total_units = len(units_of(toy.CONFIG))
    assert run_and_kill([*command, "committed@1"], REPO, env, expect_hang=True) == "HANG committed 1"
    # The kill left the -wal side file behind; .gitignore (and many copy tools) drop it.
    # The main file alone must already hold the finished unit. Copied before anything
    # else opens the store: closing a connection may checkpoint the WAL itself.
    main_file_only = tmp_path / "main-file-only.sqlite"
    shutil.copyfile(store, main_file_only)
    assert _units_in(main_file_only) == 1
    assert _units_in(store) == 1 < total_units
    assert set(table_rows(store)) < set(table_rows(reference_store))  # what is there is right

    assert run_and_kill(command, REPO, env, expect_hang=False) == "DONE"
    assert table_rows(store) == table_rows(reference_store)
    assert table_rows(store, "units") == table_rows(reference_store, "units")
    assert table_rows(store, "cells") == table_rows(reference_store, "cells")
    logs = sorted(tmp_path.glob("resumed.sqlite.run-*.log"))
    assert len(logs) == 2 and "resuming" in logs[-1].read_text()


def test_rerun_recomputes_nothing(tmp_path, reference_store, run_toy):
    store = tmp_path / "again.sqlite"
    shutil.copy(reference_store, store)
    summary = run_toy(toy.CONFIG, store)
    assert summary["units_run"] == 0 and summary["rows_written"] == 0
    assert summary["units_resumed"] == len(units_of(toy.CONFIG))
    assert table_rows(store) == table_rows(reference_store)


def test_shards_merged_equal_the_unsharded_run(tmp_path, reference_store, run_toy):
    shards = [tmp_path / f"shard{i}.sqlite" for i in range(2)]
    for i, path in enumerate(shards):
        run_toy(toy.CONFIG, path, shard=(i, 2))
    assert all(0 < _units_in(path) < len(units_of(toy.CONFIG)) for path in shards)
    assert not set(table_rows(shards[0])) & set(table_rows(shards[1]))
    merged = tmp_path / "merged.sqlite"
    counts = merge(merged, shards)
    assert counts["results"] == len(table_rows(reference_store))
    assert table_rows(merged) == table_rows(reference_store)
    assert table_rows(merged, "units") == table_rows(reference_store, "units")
    assert table_rows(merged, "cells") == table_rows(reference_store, "cells")  # status: done
    # identical rows (a shard merged twice, or into a store that holds it) are kept once
    merge(merged, [shards[0], reference_store])
    assert table_rows(merged) == table_rows(reference_store)
    with Store(merged, create=False) as store:
        assert [r["kind"] for r in store.runs()].count("merge") == 2


def test_merge_refuses_another_sweep(tmp_path, reference_store):
    other = tmp_path / "other.sqlite"
    config = dataclasses.replace(toy.CONFIG, attack=dataclasses.replace(toy.CONFIG.attack, population_size=9))
    with Store(other) as store:
        store.initialize(config.to_json(), config.key())
    out = tmp_path / "out.sqlite"
    with pytest.raises(StoreError, match="another sweep.*attack.population_size"):
        merge(out, [reference_store, other])
    assert not out.exists()


def test_merge_refuses_conflicting_rows_and_leaves_out_unchanged(tmp_path, reference_store):
    tampered = tmp_path / "tampered.sqlite"
    shutil.copy(reference_store, tampered)
    connection = sqlite3.connect(str(tampered))
    connection.execute("UPDATE results SET queries = queries + 1 WHERE rowid = (SELECT MIN(rowid) FROM results)")
    connection.commit()
    connection.close()
    out = tmp_path / "out.sqlite"
    merge(out, [reference_store])
    before = table_rows(out)
    with pytest.raises(StoreError, match="conflicts"):
        merge(out, [tampered])
    assert table_rows(out) == before
    assert not list(tmp_path.glob(".out.sqlite.merging*"))


def test_store_of_another_sweep_is_refused(tmp_path, reference_store, run_toy):
    store = tmp_path / "s.sqlite"
    shutil.copy(reference_store, store)
    config = dataclasses.replace(toy.CONFIG, pixels=(3,))
    with pytest.raises(StoreError, match="another sweep.*pixels"):
        run_toy(config, store)
    # the device layout is not part of the sweep: another machine may resume with other slots
    relaid = dataclasses.replace(toy.CONFIG, attack=dataclasses.replace(toy.CONFIG.attack, slots=3))
    assert run_toy(relaid, store)["units_run"] == 0
    # nor is the forward's evaluation order, also in keys that held it (written for a while)
    rescored = dataclasses.replace(toy.CONFIG, attack=dataclasses.replace(toy.CONFIG.attack, forward="incremental"))
    assert "forward" not in rescored.key()["attack"]
    assert run_toy(rescored, store)["units_run"] == 0
    connection = sqlite3.connect(str(store))
    (text,) = connection.execute("SELECT value FROM meta WHERE key = 'sweep_key'").fetchone()
    saved = json.loads(text)
    saved["attack"]["forward"] = "incremental"
    connection.execute("UPDATE meta SET value = ? WHERE key = 'sweep_key'", (json.dumps(saved),))
    connection.commit()
    connection.close()
    assert run_toy(toy.CONFIG, store)["units_run"] == 0


def test_every_layout_field_is_left_out_of_every_key(tmp_path, reference_store, run_toy):
    """ONE list of the fields that do not change results (attack.config.LAYOUT_FIELDS)
    is what search_key and cell ids leave out and what stores ignore when they compare
    sweep keys: a store resumes with any of them changed, devices included."""
    from deattack.attack.config import LAYOUT_FIELDS
    from deattack.sweep.store import _comparable
    from deattack.sweep.grid import expand

    assert set(LAYOUT_FIELDS) == {"slots", "chunk_generations", "microbatch", "refill", "devices", "forward"}
    changed = {"slots": 3, "chunk_generations": 2, "microbatch": 16, "refill": False, "devices": 1,
               "forward": "incremental"}
    assert set(changed) == set(LAYOUT_FIELDS)
    relaid = dataclasses.replace(toy.CONFIG, attack=dataclasses.replace(toy.CONFIG.attack, **changed))
    # the written sweep key keeps `devices`, as it always did (stored keys never change)
    assert set(relaid.key()["attack"]) & set(LAYOUT_FIELDS) == {"devices"}
    assert not set(relaid.attack.search_key()) & set(LAYOUT_FIELDS)
    assert _comparable(relaid.key()) == _comparable(toy.CONFIG.key())
    assert [c.cell_id for c in expand(relaid)] == [c.cell_id for c in expand(toy.CONFIG)]
    store = tmp_path / "s.sqlite"
    shutil.copy(reference_store, store)
    connection = sqlite3.connect(str(store))
    (text,) = connection.execute("SELECT value FROM meta WHERE key = 'sweep_key'").fetchone()
    saved = json.loads(text)
    saved["attack"]["devices"] = 5  # another machine's device count in the stored key
    connection.execute("UPDATE meta SET value = ? WHERE key = 'sweep_key'", (json.dumps(saved),))
    connection.commit()
    connection.close()
    assert run_toy(relaid, store)["units_run"] == 0


def test_store_columns_are_the_record_fields():
    """The sweep store has one column per Record field (attack.record names them)."""
    from deattack.attack.record import RECORD_FIELDS, Record
    from deattack.sweep.store import RESULT_COLUMNS

    assert sorted(name for name, _ in RESULT_COLUMNS) == sorted(RECORD_FIELDS)
    record = Record.nonfinite(4, 3, -1)
    assert list(record.to_dict()) == list(RECORD_FIELDS)
    assert list(dataclasses.replace(record, extra={"n_fooling": 2}).to_dict())[-1] == "n_fooling"


def test_changed_victim_is_refused(tmp_path, reference_store, toy_inputs):
    from deattack.sweep.run import run_sweep

    store = tmp_path / "s.sqlite"
    shutil.copy(reference_store, store)
    victim = toy_inputs["victims"]["toy"]
    changed = dataclasses.replace(victim, variables={**victim.variables, "bias": victim.variables["bias"] + 1})
    with pytest.raises(StoreError, match="changed"):
        run_sweep(toy.CONFIG, store, victims={"toy": changed}, datasets=toy_inputs["datasets"])


def test_export_csv_and_parquet(tmp_path, reference_store):
    path = export(reference_store, tmp_path / "rows.csv")
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(table_rows(reference_store))
    assert {r["mode"] for r in rows} == {"untargeted", "targeted"}
    assert {r["victim"] for r in rows} == {"toy"}
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    table = pyarrow_parquet.read_table(export(reference_store, tmp_path / "rows.parquet"))
    assert table.num_rows == len(rows)


def test_store_contents_are_consistent(reference_store, toy_inputs):
    """Rows: every correctly classified image of the set, 1 untargeted problem, 9 targeted."""
    images, labels = toy_inputs["datasets"]["test"]
    attacked = [i for i in range(toy.CONFIG.images.count) if i not in toy.MISLABELLED]
    with Store(reference_store, create=False) as store:
        cells = store.cells()
        assert [c["status"] for c in cells] == ["done", "done"]
        for cell in cells:
            rows = store.results(cell["cell_id"])
            per_image = 1 if cell["config"]["attack"]["mode"] == "untargeted" else 9
            assert sorted({r["image_index"] for r in rows}) == attacked
            assert len(rows) == per_image * len(attacked)
            assert all(r["true_label"] == labels[r["image_index"]] for r in rows)
        assert sum(u["n_selected"] for u in store.units()) == 2 * toy.CONFIG.images.count
        assert store.sweep_config() == toy.CONFIG.to_json()


def _partial_rows(path: Path) -> list[tuple]:
    connection = sqlite3.connect(str(path))
    try:
        return connection.execute("SELECT cell_id, chunk, image_index, target FROM partial_results").fetchall()
    finally:
        connection.close()


def test_a_unit_stopped_inside_resumes_from_its_finished_problems(tmp_path, reference_store):
    """kill -9 the sweep after a unit saved some finished problems (18 targeted problems in
    2 slots finish in waves): the killed store holds those problems of a unit it does not
    hold; the rerun attacks only the rest of that unit, logs it, and the store equals
    an uninterrupted run's with no saved problem left over."""
    store = tmp_path / "inside.sqlite"
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"), PYTHONPATH=str(REPO))
    command = [sys.executable, str(REPO / "tests" / "sweep" / "driver.py"), str(store)]
    assert run_and_kill([*command, "partial@3"], REPO, env, expect_hang=True) == "HANG partial 3"
    saved = _partial_rows(store)
    in_flight = {(c, k) for c, k, _, _ in saved}
    connection = sqlite3.connect(str(store))
    committed = set(connection.execute("SELECT cell_id, chunk FROM units").fetchall())
    connection.close()
    # The untargeted units (2 problems each) committed theirs; what is left is the first
    # targeted unit's, mid-way.
    assert len(in_flight) == 1 and not in_flight & committed and 2 <= len(saved) < 18
    assert {(c, i, t) for c, _, i, t in saved} <= {row[:3] for row in table_rows(reference_store)}

    assert run_and_kill(command, REPO, env, expect_hang=False) == "DONE"
    assert table_rows(store) == table_rows(reference_store)
    assert table_rows(store, "units") == table_rows(reference_store, "units")
    assert _partial_rows(store) == []
    log = sorted(tmp_path.glob("inside.sqlite.run-*.log"))[-1].read_text()
    assert f"{len(saved)} problems finished by a stopped run" in log


def test_saved_problems_are_not_attacked_again(tmp_path, reference_store, run_toy):
    """A saved record (marked with a query count no attack gives) comes back as the unit's
    row for its problem, while the unit's other problems are attacked as usual."""
    unit = units_of(toy.CONFIG)[0]
    with Store(reference_store, create=False) as reference:
        rows = [r for r in reference.results(unit.cell.cell_id) if unit.start <= r["image_index"] < unit.stop]
    marked = {k: v for k, v in rows[0].items() if k != "cell_id"} | {"queries": 123456}
    store = tmp_path / "seeded.sqlite"
    with Store(store) as seeded:
        seeded.save_partial(unit.cell.cell_id, unit.chunk, [marked], elapsed_s=7.0)
    run_toy(toy.CONFIG, store)
    with Store(store, create=False) as resumed:
        got = [r for r in resumed.results(unit.cell.cell_id) if unit.start <= r["image_index"] < unit.stop]
        assert resumed.count("partial_results") == 0
        wall = {u["chunk"]: u["wall_s"] for u in resumed.units() if u["cell_id"] == unit.cell.cell_id}
    assert got == [rows[0] | {"queries": 123456}] + rows[1:] and wall[unit.chunk] >= 7.0


def test_reading_a_store_writes_nothing_to_it(tmp_path, reference_store):
    """A report, an export or a --reuse source opens the store read-only: a store written by
    an older schema (no partial_results table) stays byte for byte as committed, and a
    write to it is refused."""
    from deattack.reports import sweep_report as report

    old = tmp_path / "old.sqlite"
    shutil.copy(reference_store, old)
    with sqlite3.connect(old) as connection:
        connection.execute("DROP TABLE partial_results")
    connection.close()
    before = old.read_bytes()
    data = report.load(old)
    export(old, tmp_path / "rows.csv")
    assert old.read_bytes() == before  # SQLite's -wal / -shm side files may appear (git ignores them)
    assert len(data.records) == len(table_rows(reference_store))
    with Store(old, read_only=True) as store, pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.connection.execute("DELETE FROM results")
    # Not a store: a clear error naming it, for a SQLite file without the tables and for junk.
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(StoreError, match="empty.sqlite is not a results store"):
        Store(tmp_path / "empty.sqlite", read_only=True)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="junk.sqlite is not a usable SQLite results store"):
        Store(tmp_path / "junk.sqlite", read_only=True)
    with pytest.raises(StoreError, match="absent.sqlite is not a results store"):
        Store(tmp_path / "absent.sqlite", read_only=True)
