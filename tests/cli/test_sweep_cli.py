"""`deattack sweep | report | export | merge` end to end on configs/sweep_smoke.py (lenet).

Calls deattack.cli.main.main in-process.
The lenet checkpoint is copied first: a training run may re-export checkpoints/lenet
while the test runs, and a store refuses a victim whose weights changed.
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from deattack import checkpoint
from deattack.cli.main import main
from deattack.victims.loading import CHECKPOINT_DIR, load_victim
from tests import support
from tests.support import requires_cifar10
from tests.sweep.conftest import table_rows


@pytest.fixture(autouse=True)
def strict_numerics():
    """Strict numerics: dtype promotion raises; rank promotion is allowed (the attack's
    population initialisers need it)."""
    with support.strict_numerics("allow"):
        yield


pytestmark = requires_cifar10


def _copy_lenet(folder):
    for _ in range(5):  # a concurrent export may replace the files mid-copy: retry
        for source in checkpoint.paths_for(CHECKPOINT_DIR / "lenet"):
            shutil.copy(source, folder / source.name)
        try:
            load_victim(str(folder / "lenet"))
            return folder / "lenet"
        except checkpoint.CheckpointError:
            continue
    pytest.skip("checkpoints/lenet kept changing while being copied")


def test_sweep_report_export_merge(tmp_path, capsys):
    victim = _copy_lenet(tmp_path)
    store = tmp_path / "smoke.sqlite"
    sweep = ["sweep", "configs/sweep_smoke.py", "--store", str(store), "--set", f"victims={str(victim)!r}",
             "--set", "modes=untargeted", "--json"]
    assert main(sweep) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["units_run"] == summary["units_total"] == 2 and summary["cells_done"] == 1
    assert summary["rows_in_store"] == len(table_rows(store)) <= 4

    assert main(sweep) == 0  # the same command again: everything is there already
    assert json.loads(capsys.readouterr().out)["units_run"] == 0
    assert len(list(tmp_path.glob("smoke.sqlite.run-*.log"))) == 2

    assert main(["report", str(store), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "deattack sweep configs/sweep_smoke.py" in markdown and "deattack report" in markdown
    assert str(store.resolve()) in markdown and "lenet" in markdown

    assert main(["export", str(store), "--out", str(tmp_path / "rows.csv")]) == 0
    with open(tmp_path / "rows.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == summary["rows_in_store"]

    assert main(["merge", str(tmp_path / "merged.sqlite"), str(store)]) == 0
    assert table_rows(tmp_path / "merged.sqlite") == table_rows(store)
    capsys.readouterr()


@pytest.mark.parametrize("assignment, key", [("pixels=0", "pixels"), ("bogus=1", "bogus"),
                                             ("victims=no-such-victim", "victims")])
def test_bad_sweep_config_exits_2_naming_the_key(tmp_path, capsys, assignment, key):
    assert main(["sweep", "configs/sweep_smoke.py", "--store", str(tmp_path / "s.sqlite"),
                 "--set", assignment]) == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()


def test_bad_shard_exits_2(capsys):
    assert main(["sweep", "configs/sweep_smoke.py", "--shard", "3/2"]) == 2
    assert "shard" in capsys.readouterr().err


def test_deattack_cli_registers_the_sweep_commands():
    import argparse

    from deattack.cli import main as cli

    commands = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"sweep", "merge", "report", "export"} <= set(commands.choices)
