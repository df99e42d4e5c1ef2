"""Choosing units by number (`--units 48-50,24`) and listing them with their state in a
store (`--plan`): the numbers are positions in units_of, a chosen subset run piece by
piece ends as the uninterrupted store, and the listing reads the store without writing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deattack.cli.main import main
from deattack.sweep.grid import format_units, parse_units, select_units, shard_units, unit_number, units_of
from deattack.sweep.run import plan
from deattack.sweep.store import Store, StoreError
from tests.sweep import toy
from tests.sweep.conftest import table_rows


@given(st.sets(st.integers(0, 300), min_size=1))
def test_format_and_parse_are_inverse(numbers):
    text = format_units(numbers)
    assert parse_units(text) == tuple(sorted(numbers))
    assert len(text.split(",")) == sum(1 for n in numbers if n - 1 not in numbers)  # one part a run


def test_parse_units_reads_ranges_and_lists():
    assert parse_units("48-50,24") == (24, 48, 49, 50)
    assert parse_units(" 3 , 3,1-2") == (1, 2, 3)
    assert parse_units([5, 2, 5]) == (2, 5)
    assert parse_units(None) is None


@pytest.mark.parametrize("text", ["", "a", "1-", "5-3", "-2", "1,,2", "1-2-3", "1.5"])
def test_bad_units_name_the_problem(text):
    with pytest.raises(ValueError, match="units"):
        parse_units(text)


def test_select_units_is_the_shard_within_the_numbers():
    units = units_of(toy.CONFIG)
    assert select_units(units) == units
    assert select_units(units, "1/2") == shard_units(units, (1, 2))
    assert select_units(units, (0, 1), (4, 1)) == [units[1], units[4]]
    assert select_units(units, "1/2", (0, 1, 2, 3)) == [units[1], units[3]]
    with pytest.raises(ValueError, match=f"sweep has {len(units)} units"):
        select_units(units, (0, 1), (0, len(units)))


def test_unit_number_is_the_position_in_units_of():
    units = units_of(toy.CONFIG)
    per_cell = len(units) // len({unit.cell.cell_id for unit in units})
    assert per_cell > 1  # several chunks a cell, so the formula is exercised
    assert [unit_number(unit.cell.position, unit.chunk, per_cell) for unit in units] == list(range(len(units)))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_units_run_in_pieces_end_as_the_uninterrupted_store(tmp_path, run_toy, reference_store):
    store = tmp_path / "pieces.sqlite"
    total = len(units_of(toy.CONFIG))
    assert [row["state"] for row in plan(toy.CONFIG, store)] == ["pending"] * total  # no store yet
    assert not store.exists()

    first = run_toy(toy.CONFIG, store, units="1,4-5")
    assert first["units_run"] == first["units_total"] == 3
    listed = plan(toy.CONFIG, store)
    assert [row["unit"] for row in listed] == list(range(total))
    assert [row["state"] for row in listed] == ["pending", "done", "pending", "pending", "done", "done"]
    assert all(row["rows"] >= 0 and row["wall_s"] >= 0 for row in listed if row["state"] == "done")
    with Store(store, read_only=True) as opened:
        assert opened.runs()[-1]["shard"] == "0/1 units 1,4-5"

    run_toy(toy.CONFIG, store, units="0-5")  # the rest; the three done are skipped
    assert table_rows(store) == table_rows(reference_store)
    assert table_rows(store, "units") == table_rows(reference_store, "units")


def test_plan_shows_saved_problems_and_writes_nothing(tmp_path, run_toy):
    store = tmp_path / "partial.sqlite"
    run_toy(toy.CONFIG, store, units=[0])
    unit = units_of(toy.CONFIG)[2]
    record = {"image_index": unit.start, "target": -1, "success": False}
    with Store(store) as opened:
        opened.save_partial(unit.cell.cell_id, unit.chunk, [record], 1.5)
        opened.checkpoint_wal()
    before = _digest(store)
    listed = plan(toy.CONFIG, store)
    assert listed[2]["state"] == "partial" and listed[2]["problems_saved"] == 1
    assert listed[0]["state"] == "done" and listed[1]["state"] == "pending"
    assert _digest(store) == before


def test_plan_refuses_a_store_of_another_sweep(tmp_path, run_toy):
    store = tmp_path / "other.sqlite"
    run_toy(toy.CONFIG, store, units=[0])
    bigger = dataclasses.replace(toy.CONFIG, attack=dataclasses.replace(toy.CONFIG.attack, population_size=10))
    with pytest.raises(StoreError, match="another sweep"):
        plan(bigger, store)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="junk.sqlite"):
        plan(toy.CONFIG, junk)


def test_cli_plan_lists_units_and_names_the_rest(tmp_path, capsys):
    store = tmp_path / "none.sqlite"
    assert main(["sweep", "configs/sweep_smoke.py", "--store", str(store), "--plan"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[0] == "0" and "pending" in lines[0]
    assert lines[-1].endswith(f"pending; run the rest with --units 0-{len(lines) - 2}")
    assert not store.exists()
    assert main(["sweep", "configs/sweep_smoke.py", "--store", str(store), "--plan", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["unit"] for row in listed["units"]] == list(range(len(lines) - 1))


@pytest.mark.parametrize("units, message", [("7-3", "backwards"), ("999", "do not exist")])
def test_cli_bad_units_exit_2_before_any_work(tmp_path, capsys, units, message):
    store = tmp_path / "s.sqlite"
    assert main(["sweep", "configs/sweep_smoke.py", "--store", str(store), "--units", units]) == 2
    assert message in capsys.readouterr().err
    assert not store.exists()


def test_the_operator_report_names_the_units_plan_lists_as_missing(tmp_path, run_toy):
    """The report numbers a cell's missing chunks itself (position x chunks + chunk);
    they must be the units the sweep runs under those numbers."""
    from deattack.reports import operator_report

    store = tmp_path / "half.sqlite"
    run_toy(toy.CONFIG, store, units="1,4-5", command=f"deattack sweep configs/toy.py:x --store {store} --units 1,4-5")
    missing = [row["unit"] for row in plan(toy.CONFIG, store) if row["state"] != "done"]
    assert missing == [0, 2, 3]
    operator_report.build_operator_report([store], tmp_path / "out", figures=False)
    markdown = (tmp_path / "out" / "operators.md").read_text()
    assert f"    deattack sweep configs/toy.py:x --store {store} --units 0,2-3" in markdown
