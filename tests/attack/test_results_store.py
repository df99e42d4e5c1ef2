"""The JSONL result store (append, reopen, repair, resume) and the summary numbers."""

import dataclasses
import json

import numpy as np
import pytest

from deattack.attack import ResultsFolder, attack, summarize
from deattack.attack.results import CONFIG_FILE, RESULTS_FILE

from .red_dot import BASE_CONFIG, NUM_WEAKNESS_IMAGES, TRUE_CLASS, grey_images

RUN_INFO = {"attack": {"pixels": 1, "seed": 0}, "victim": "red-dot"}


def _record(index, target=-1, success=True, queries=100, status=None, confidence=0.9):
    return {"image_index": index, "target": target, "success": success,
            "status": status or ("success" if success else "failed"), "queries": queries,
            "adversarial_confidence": confidence if success else 0.1, "pixels": [[1, 2, 3, 4, 5]]}


def test_append_and_reopen_keeps_records(tmp_path):
    store = ResultsFolder(tmp_path / "out", RUN_INFO)
    assert store.records == [] and store.completed() == set()
    store.append([_record(0), _record(1, success=False)])
    store.append([])
    store.append([_record(2, target=5)])
    assert json.loads((tmp_path / "out" / CONFIG_FILE).read_text()) == RUN_INFO
    reopened = ResultsFolder(tmp_path / "out", RUN_INFO)
    assert reopened.records == [_record(0), _record(1, success=False), _record(2, target=5)]
    assert reopened.completed() == {(0, -1), (1, -1), (2, 5)}
    lines = (tmp_path / "out" / RESULTS_FILE).read_text().splitlines()
    assert [json.loads(line) for line in lines] == reopened.records


def test_torn_last_line_is_dropped_and_file_repaired(tmp_path):
    store = ResultsFolder(tmp_path, RUN_INFO)
    store.append([_record(0), _record(1)])
    path = tmp_path / RESULTS_FILE
    good = path.read_bytes()
    path.write_bytes(good + json.dumps(_record(2)).encode()[:25])  # killed mid-write
    reopened = ResultsFolder(tmp_path, RUN_INFO)
    assert reopened.records == [_record(0), _record(1)]
    assert path.read_bytes() == good  # the torn bytes are gone
    reopened.append([_record(2)])
    assert ResultsFolder(tmp_path, RUN_INFO).records == [_record(0), _record(1), _record(2)]


def test_last_record_without_newline_survives_the_next_append(tmp_path):
    store = ResultsFolder(tmp_path, RUN_INFO)
    store.append([_record(0), _record(1)])
    path = tmp_path / RESULTS_FILE
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    reopened = ResultsFolder(tmp_path, RUN_INFO)
    assert reopened.records == [_record(0), _record(1)]
    reopened.append([_record(2)])
    assert ResultsFolder(tmp_path, RUN_INFO).records == [_record(0), _record(1), _record(2)]


def test_duplicate_problem_keeps_one_record(tmp_path):
    store = ResultsFolder(tmp_path, RUN_INFO)
    store.append([_record(0, queries=100)])
    store.append([_record(0, queries=300)])
    assert ResultsFolder(tmp_path, RUN_INFO).records == [_record(0, queries=300)]


def test_opening_creates_nothing_until_the_first_record(tmp_path):
    """Issue 27 item 10: an attack that fails before its first record (a compile error, an
    interrupt) leaves no folder behind; the first record creates it with config.json."""
    folder = tmp_path / "new" / "out"
    store = ResultsFolder(folder, RUN_INFO)
    store.append([])
    assert not list(tmp_path.iterdir())
    store.append([_record(0)])
    assert json.loads((folder / CONFIG_FILE).read_text()) == RUN_INFO
    assert ResultsFolder(folder, RUN_INFO).records == [_record(0)]


@pytest.mark.allow_rank_promotion
def test_an_attack_with_no_problem_into_a_new_folder(red_dot_victim, tmp_path):
    """Every image is of the one target class: nothing to attack, and no crash writing the
    folder's files, which are now made by the first record, not by the output check."""
    config = dataclasses.replace(BASE_CONFIG, mode="targeted", targets=TRUE_CLASS)
    results = attack(red_dot_victim, grey_images(2), np.full(2, TRUE_CLASS), config, out=tmp_path / "new")
    assert results.records == [] and results.summary["n_problems"] == 0


def test_reopening_with_another_config_raises(tmp_path):
    ResultsFolder(tmp_path, RUN_INFO).append([_record(0)])
    # the message names each differing field with both values (issue 27 item 5)
    with pytest.raises(ValueError, match=r"another attack setting \(attack.pixels: 1 in the folder, 3 now; "
                                         r"victim: 'red-dot' in the folder, 'other' now\)"):
        ResultsFolder(tmp_path, {**RUN_INFO, "attack": {"pixels": 3, "seed": 0}, "victim": "other"})


def test_corrupt_config_file_raises(tmp_path):
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ResultsFolder(tmp_path, RUN_INFO)


def test_unwritable_folder_raises(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="not writable"):
        ResultsFolder(blocker / "out", RUN_INFO)


@pytest.mark.allow_rank_promotion
def test_attack_resumes_from_its_folder(red_dot_victim, untargeted_run, tmp_path):
    images, labels = grey_images(NUM_WEAKNESS_IMAGES), np.full(NUM_WEAKNESS_IMAGES, TRUE_CLASS)
    first = attack(red_dot_victim, images, labels, BASE_CONFIG, out=tmp_path)
    assert first.records == untargeted_run.records  # the folder changes nothing
    assert first.summary["queries_this_run"] == sum(r["queries"] for r in first.records) > 0
    assert len((tmp_path / RESULTS_FILE).read_text().splitlines()) == NUM_WEAKNESS_IMAGES
    saved = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert saved["attack"] == json.loads(json.dumps(BASE_CONFIG.search_key()))
    assert saved["victim"] == "red-dot"

    second = attack(red_dot_victim, images, labels, BASE_CONFIG, out=tmp_path)
    assert second.summary["queries_this_run"] == 0
    assert second.records == first.records
    assert second.summary["n_success"] == first.summary["n_success"] == NUM_WEAKNESS_IMAGES
    assert len((tmp_path / RESULTS_FILE).read_text().splitlines()) == NUM_WEAKNESS_IMAGES

    # Layout fields do not change results, so they may differ on resuming; the seed may not.
    third = attack(red_dot_victim, images, labels, dataclasses.replace(BASE_CONFIG, slots=2), out=tmp_path)
    assert third.summary["queries_this_run"] == 0 and third.records == first.records
    with pytest.raises(ValueError, match="another attack setting .attack.seed: 0 in the folder, 5 now"):
        attack(red_dot_victim, images, labels, dataclasses.replace(BASE_CONFIG, seed=5), out=tmp_path)


def test_summarize_hand_made_records():
    records = [
        _record(0, queries=100, confidence=0.9),
        _record(1, success=False, queries=400),
        _record(2, queries=300, confidence=0.7),
        {**_record(3, success=False, queries=0), "status": "nonfinite_logits"},
        _record(2, target=4, success=False, queries=400),  # a second problem of image 2
    ]
    summary = summarize(records)
    assert summary == {
        "n_images": 4,
        "n_problems": 5,
        "n_attacked": 4,
        "n_success": 2,
        "success_rate": 0.5,
        "queries_mean": pytest.approx((100 + 400 + 300 + 400) / 4),
        "queries_median": 350.0,
        "queries_median_success": 200.0,
        "mean_adversarial_confidence": pytest.approx(0.8),
        "n_nonfinite": 1,
    }
    timed = summarize(records, wall_s=2.0)
    assert timed["wall_s"] == 2.0 and timed["queries_per_s"] == 1200 / 2.0
    assert summarize(records, wall_s=2.0, queries_run=500)["queries_per_s"] == 250.0


def test_summarize_empty_and_all_failed():
    empty = summarize([])
    assert empty["n_problems"] == empty["n_success"] == 0 and empty["success_rate"] == 0.0
    assert empty["queries_median_success"] is None and empty["mean_adversarial_confidence"] is None
    failed = summarize([_record(0, success=False, queries=50)])
    assert failed["success_rate"] == 0.0 and failed["queries_mean"] == 50.0
    assert failed["queries_median_success"] is None
