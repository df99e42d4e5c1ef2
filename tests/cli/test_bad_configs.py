"""Bad settings on the command line and in config files: exit status 2 and a message
naming the field (and its allowed range), before any victim, data or store is touched."""

from __future__ import annotations

import re

import pytest

from deattack.cli import main as cli
from tests.support import forbid_work

ATTACK = ["attack", "--model", "lenet", "--images", "2"]


@pytest.mark.parametrize("arguments, message", [
    (["--pixels", "0"], "pixels must be an integer >= 1, got 0"),
    (["--pixels", "2000"], r"pixels must be an integer in \[1, 1024\]"),
    (["--popsize", "3"], r"population_size=3 is too small for mutation 'rand/1-snap-local' \(the default operator; "
                         r"--operator or --preset su2019 picks another\), which needs at least 4"),
    (["--preset", "su2019", "--popsize", "3"], "too small for mutation 'rand/1', which needs at least 4"),
    (["--popsize", "0"], "population_size must be an integer >= 1"),
    (["--max-gens", "-1"], "max_generations must be an integer >= 0, got -1"),
    (["--popsize", "400", "--max-gens", "6000000"], "exceeds the int32 query counter"),
    (["--set", "differential_weight=3"], r"differential_weight=3.0 is outside \(0.0, 2.0\]"),
    (["--set", "differential_weight=0"], r"differential_weight=0.0 is outside \(0.0, 2.0\]"),
    (["--set", "crossover_rate=1.5"], r"crossover_rate=1.5 is outside \[0.0, 1.0\]"),
    (["--set", "crossover_rate=nan"], "crossover_rate must be a number, got 'nan'"),
    (["--set", "confidence=1"], r"confidence must be in \[0, 1\), got 1.0"),
    (["--seed", "-3"], "seed must be an integer >= 0, got -3"),
    (["--set", "seed=4294967296"], r"seed must be an integer in \[0, 2\*\*32\)"),
    (["--operator", "rand/9"], "mutation='rand/9' is unknown; known: "),
    (["--crossover", "uniform"], "crossover='uniform' is unknown; known: bin, exp, none"),
    (["--adaptation", "lshade"], "adaptation='lshade' is unknown"),
    (["--set", "bogus=1"], "unknown config key 'bogus'; known keys: pixels"),
    (["--config", "configs/su2019.py:nine"], "unknown su2019 variant 'nine'; use e.g. 1px"),
    (["--config", "configs/su2019.py:3px-targetted"], "unknown su2019 variant '3px-targetted'; use e.g. 1px"),
    (["--images", "0"], "--images must be >= 1, got 0"),
    (["--config", "configs/no-such-file.py"], "config file configs/no-such-file.py does not exist"),
    (["--config", "configs/sweep_smoke.py"], "configs/sweep_smoke.py returns a SweepConfig, not an AttackConfig"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_bad_attack_setting_exits_2_before_work(monkeypatch, capsys, arguments, message):
    forbid_work(monkeypatch, "on a bad setting")
    assert cli.main([*ATTACK, *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("deattack attack: error: ")
    assert re.search(message, error), error


def test_unknown_preset_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main([*ATTACK, "--preset", "carlini"])
    assert raised.value.code == 2
    assert "argument --preset: invalid choice: 'carlini' (choose from" in capsys.readouterr().err


def test_unknown_model(tmp_path, capsys):
    assert cli.main(["attack", "--model", "mobilenet", "--out", str(tmp_path / "out")]) == 2
    assert "no checkpoint for 'mobilenet'" in capsys.readouterr().err
    assert cli.main(["train", "--model", "mobilenet", "--workdir", str(tmp_path / "w")]) == 2
    assert "unknown model 'mobilenet'" in capsys.readouterr().err


@pytest.mark.parametrize("body, key", [
    ("SweepConfig(name='x', bogus=1)", "bogus"),
    ("SweepConfig(name='x', attack=AttackConfig(popsize=10))", "popsize"),
    ("SweepConfig(name='x', images=ImageSet(cont=3))", "cont"),
])
def test_sweep_config_file_with_an_unknown_key(tmp_path, monkeypatch, capsys, body, key):
    forbid_work(monkeypatch, "on a bad setting")
    config = tmp_path / "bad_sweep.py"
    config.write_text("from deattack.attack import AttackConfig\nfrom deattack.sweep import ImageSet, SweepConfig\n\n"
                      f"def get_config(variant=''):\n    return {body}\n")
    store = tmp_path / "s.sqlite"
    assert cli.main(["sweep", str(config), "--store", str(store)]) == 2
    error = capsys.readouterr().err
    assert f"config file {config}" in error and f"unexpected keyword argument '{key}'" in error, error
    assert not store.exists()


@pytest.mark.parametrize("command, config, kind", [
    ("train", "configs/su2019.py:1px", "TrainConfig"),
    ("sweep", "configs/train.py", "SweepConfig"),
    ("defenses", "configs/sweep_smoke.py", "DefenseEvalConfig"),
])
def test_a_config_file_of_another_kind_exits_2_before_work(monkeypatch, capsys, tmp_path, command, config, kind):
    """Every command that reads a config file checks what it returns, in one place
    (deattack.config_files.load)."""
    forbid_work(monkeypatch, "on a config of another kind")
    argv = {"train": ["train", "--config", config, "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "o")],
            "sweep": ["sweep", config, "--store", str(tmp_path / "s.sqlite")],
            "defenses": ["defenses", config, "--out", str(tmp_path / "d")]}[command]
    assert cli.main(argv) == 2
    assert re.search(f"{config} returns an? \\w+, not an? {kind}", capsys.readouterr().err)


def test_train_never_overwrites_a_shipped_victim(monkeypatch, capsys, tmp_path):
    """`deattack train --model lenet` exports into its workdir by default; naming a shipped
    checkpoint as --out is refused before any data loads, the shipped files untouched."""
    from deattack import checkpoint
    from deattack.training import train as training
    from deattack.victims.loading import CHECKPOINT_DIR

    shipped = [path.read_bytes() for path in checkpoint.paths_for(CHECKPOINT_DIR / "lenet")]
    forbid_work(monkeypatch, "when --out is a shipped victim")
    argv = ["train", "--model", "lenet", "--epochs", "1", "--workdir", str(tmp_path / "w")]
    assert cli.main([*argv, "--out", str(CHECKPOINT_DIR / "lenet")]) == 2
    assert "already holds a checkpoint this run did not write" in capsys.readouterr().err
    assert [path.read_bytes() for path in checkpoint.paths_for(CHECKPOINT_DIR / "lenet")] == shipped
    calls = []
    monkeypatch.setattr(training, "train", lambda config, workdir, export, **kw: calls.append(export) or
                        {"model": "lenet", "params": 0, "test_accuracy": 0.0, "epochs_done": 1})
    assert cli.main(argv) == 0
    assert calls == [str(tmp_path / "w" / "checkpoint")]


def test_version(capsys):
    from deattack import __version__

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"deattack {__version__}"


def test_an_out_that_is_a_file_is_named_a_file(monkeypatch, capsys, tmp_path):
    forbid_work(monkeypatch, "when --out is a file")
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main([*ATTACK, "--out", str(tmp_path / "notes.txt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"
