"""`deattack attack` on the first hour of a user (issue 27): reruns into an existing
folder, nothing to attack, and summaries that tell the truth."""

from __future__ import annotations

import json

import numpy as np

from deattack.cli import main as cli
from tests.support import requires_cifar10

# A budget so small that lenet is rarely fooled: 8 x (1 + 1) queries an image.
TINY = ["--model", "lenet", "--pixels", "1", "--set", "population_size=8", "--set", "max_generations=1",
        "--set", "slots=4"]


@requires_cifar10
def test_a_rerun_with_fewer_images_and_a_finished_rerun(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["attack", *TINY, "--images", "4", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) >= 2
    if not any(r["success"] for r in records):
        assert "median queries to success  - (no success)" in first
    assert "None" not in first
    # Fewer images into the same folder: the figure is drawn from every record it holds
    # (it crashed with KeyError on the images this call did not select), nothing is lost.
    assert cli.main(["attack", *TINY, "--images", "2", "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert "were already done" in again and "nothing attacked" in again
    assert [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()] == records
    assert (out / "examples.png").is_file()


@requires_cifar10
def test_nothing_to_attack_is_a_clear_error(tmp_path, capsys, cifar_test):
    from deattack.victims.loading import load_victim
    from deattack.victims.victim import correctly_classified

    images, labels = cifar_test
    wrong = np.flatnonzero(~correctly_classified(load_victim("lenet"), images[:40], labels[:40]))[:2]
    assert len(wrong)
    argv = ["attack", *TINY, "--indices", ",".join(map(str, wrong)), "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert "none of the" in error and "is classified correctly by lenet: nothing to attack" in error
    assert not (tmp_path / "run" / "results.jsonl").exists()
