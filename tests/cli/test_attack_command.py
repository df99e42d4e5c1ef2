"""`deattack attack` on the first hour of a user (issue 27): reruns into an existing
folder, nothing to attack, and summaries that tell the truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

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


@requires_cifar10
def test_one_target_class_by_name_or_index(tmp_path, capsys, cifar_test):
    """Issue 27 item 19: `--targets horse` (or `--set targets=7`) attacks every image towards
    one class, as the API's targets= does; images of that class are not attacked."""
    _, labels = cifar_test
    out = tmp_path / "run"
    argv = ["attack", *TINY, "--mode", "targeted", "--targets", "horse", "--images", "6", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "target class 7 (horse) for every image" in printed
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert records and {r["target"] for r in records} == {7}
    assert all(labels[r["image_index"]] != 7 for r in records)
    # The same attack named by index through --set resumes the same folder: nothing to do.
    assert cli.main(["attack", *TINY, "--mode", "targeted", "--set", "targets=7", "--images", "6",
                     "--out", str(out)]) == 0
    assert "nothing attacked" in capsys.readouterr().out


@requires_cifar10
def test_bad_target_class_is_a_clear_error(tmp_path, capsys):
    for extra, message in [(["--mode", "targeted", "--targets", "zebra"], "targets='zebra' is unknown"),
                           (["--mode", "targeted", "--set", "targets=12"], "targets=12 is not a class of the data"),
                           (["--targets", "horse"], "needs --mode targeted")]:
        assert cli.main(["attack", *TINY, *extra, "--images", "2", "--out", str(tmp_path / "run")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "results.jsonl").exists()


@requires_cifar10
def test_the_progress_bar_counts_queries(tmp_path, capsys):
    """Issue 27 item 11: the bar counts queries against what the unfinished problems may
    still spend (it sat at a problem count while failures spent their budget), shows no
    problem rate (11001 problem/s on a resume), and a run with nothing to attack draws none."""
    out = tmp_path / "run"
    assert cli.main(["attack", *TINY, "--images", "3", "--out", str(out)]) == 0
    bar = capsys.readouterr().err
    assert "queries, " in bar and " q/s, " in bar and "3/3 problems, " in bar and " fooled, ETA " in bar, bar
    assert "problem/s" not in bar and "0problem" not in bar, bar
    assert cli.main(["attack", *TINY, "--images", "3", "--out", str(out)]) == 0
    resumed = capsys.readouterr().err
    assert "queries" not in resumed and "problem" not in resumed, resumed


@requires_cifar10
@pytest.mark.parametrize("case", ["misclassified images", "unknown model", "no image selected"])
def test_a_run_that_fails_before_work_leaves_no_out_folder(tmp_path, capsys, cifar_test, case):
    """Issue 27 item 10: a bad input is one line and exit 2, and the new --out folder (and its
    new parents) is not left behind empty."""
    from deattack.victims.loading import load_victim
    from deattack.victims.victim import correctly_classified

    images, labels = cifar_test
    wrong = np.flatnonzero(~correctly_classified(load_victim("lenet"), images[:40], labels[:40]))[:2]
    extra = {"misclassified images": ["--indices", ",".join(map(str, wrong))],
             "unknown model": ["--model", "mobilenet"],
             "no image selected": ["--start", str(len(labels)), "--images", "2"]}[case]
    assert cli.main(["attack", *TINY, *extra, "--out", str(tmp_path / "new" / "run")]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(error) == 1 and error[0].startswith("deattack attack: error: "), error
    assert not (tmp_path / "new").exists()
