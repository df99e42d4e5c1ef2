"""The robust-accuracy comparison (`deattack report --robustness`): numbers by hand from
two hand-written robustness.json files."""

from __future__ import annotations

import json

import pytest

from deattack.reports.robustness import write_comparison


def _run(folder, smallest: dict[str, int], ks=(1, 3)):
    folder.mkdir()
    count = len(smallest)
    rows = [{"k": k, "robust_accuracy": sum(1 for s in smallest.values() if s == -1 or s > k) / count,
             "fooled": sum(1 for s in smallest.values() if 0 < s <= k), "attacked": 0, "success_rate": 0.0}
            for k in ks]
    (folder / "robustness.json").write_text(json.dumps({
        "title": folder.name, "command": f"deattack robustness --out {folder.name}", "n_images": count,
        "n_correct": count, "clean_accuracy": 1.0, "rows": rows, "smallest_k": smallest}))
    return folder


def test_comparison_counts_the_images_only_one_run_fooled(tmp_path):
    a = _run(tmp_path / "a", {"1": 1, "2": 3, "3": -1, "4": -1})
    b = _run(tmp_path / "b", {"1": 3, "2": -1, "3": 1, "4": -1})
    files = write_comparison({"rs": a, "de": b}, tmp_path / "out")
    text = (tmp_path / "out" / "robustness_comparison.md").read_text()
    # k = 1: rs fooled {1}, de fooled {3}: one each alone; k = 3: rs {1, 2}, de {1, 3}.
    assert "| 1 | 75.0% | 75.0% | 1 | 1 |" in text
    assert "| 3 | 50.0% | 50.0% | 1 | 1 |" in text
    assert set(files) == {"markdown", "figure"}


def test_runs_on_other_images_or_ks_are_refused(tmp_path):
    a = _run(tmp_path / "a", {"1": 1, "2": 3})
    with pytest.raises(ValueError, match="different images"):
        write_comparison({"a": a, "b": _run(tmp_path / "b", {"1": 1, "5": 3})}, tmp_path / "out")
    with pytest.raises(ValueError, match="different ks"):
        write_comparison({"a": a, "c": _run(tmp_path / "c", {"1": 1, "2": 3}, ks=(1, 2))}, tmp_path / "out")
    with pytest.raises(ValueError, match="holds no robustness.json"):
        write_comparison({"a": a, "d": tmp_path}, tmp_path / "out")
