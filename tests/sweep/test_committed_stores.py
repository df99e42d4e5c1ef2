"""Every sweep store committed under docs/results still reads and would resume: its
cells' ids recompute from their stored configs (cell ids, search keys and the schema
are unchanged by any refactoring), and its sweep key matches the key of the sweep
config it records, so `deattack sweep` with that config resumes it instead of refusing
it as another sweep's store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from deattack.attack.config import AttackConfig
from deattack.sweep.grid import Cell, ImageSet, SweepConfig, expand
from deattack.sweep.store import SCHEMA_VERSION, Store

REPO = Path(__file__).resolve().parents[2]
STORES = sorted((REPO / "docs" / "results").rglob("*.sqlite"))


def _attack(fields: dict) -> AttackConfig:
    known = {f.name for f in dataclasses.fields(AttackConfig)}
    assert set(fields) <= known, set(fields) - known
    return AttackConfig(**fields)


def _sweep_config(data: dict) -> SweepConfig:
    data = dict(data)
    data["images"] = ImageSet(**data["images"])
    data["attack"] = _attack(data["attack"])
    data["variants"] = tuple(tuple(tuple(pair) for pair in variant) for variant in data.get("variants", ()))
    return SweepConfig(**data)


def test_the_results_hold_committed_stores():
    assert len(STORES) >= 10


@pytest.mark.parametrize("path", STORES, ids=[p.relative_to(REPO).as_posix() for p in STORES])
def test_a_committed_store_reads_and_would_resume(path):
    with Store(path, read_only=True) as store:
        assert store.meta()["schema_version"] == SCHEMA_VERSION
        cells = store.cells()
        assert cells
        for cell in cells:
            config = cell["config"]
            rebuilt = Cell(cell["position"], config["victim"], _attack(config["attack"]),
                           ImageSet(**config["images"]))
            assert rebuilt.cell_id == cell["cell_id"]
        assert store.results()  # every row reads back as a record
        saved = store.sweep_config()
        if saved is not None:
            sweep = _sweep_config(saved)
            assert store.holds_sweep(sweep.key())
            assert {c["cell_id"] for c in cells} <= {c.cell_id for c in expand(sweep)}
