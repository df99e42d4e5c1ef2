"""Reports: every number in the tables equals a direct SQL recomputation from the store;
headers name the store, its sweep config and the command; figures are written."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from deattack.reports import sweep_report as report
from tests.sweep import toy

COMMAND = "deattack report STORE --out OUT"


@pytest.fixture(scope="module")
def built(reference_store, toy_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = report.build_report(reference_store, out, command=COMMAND, class_names=toy.CLASS_NAMES,
                                 datasets=toy_inputs["datasets"])
    return out, result


def _sql(store, query, *arguments):
    connection = sqlite3.connect(str(store))
    try:
        return connection.execute(query, arguments).fetchall()
    finally:
        connection.close()


def _expected(store) -> dict:
    """Per cell, straight from SQL: (victim, pixels, mode) -> numbers."""
    expected = {}
    for cell_id, config_text, metadata_text in _sql(store, "SELECT cell_id, config, victim_metadata FROM cells"):
        attack = json.loads(config_text)["attack"]
        key = (json.loads(config_text)["victim"], attack["pixels"], attack["mode"])
        (rate, n_attacked), = _sql(store, "SELECT AVG(success), COUNT(*) FROM results WHERE cell_id = ? "
                                          "AND status != 'nonfinite_logits'", cell_id)
        (confidence,), = _sql(store, "SELECT AVG(adversarial_confidence) FROM results WHERE cell_id = ? "
                                     "AND success = 1", cell_id)
        per_image = _sql(store, "SELECT SUM(success) FROM results WHERE cell_id = ? GROUP BY image_index", cell_id)
        (attacked, selected), = _sql(store, "SELECT SUM(n_attacked), SUM(n_selected) FROM units WHERE cell_id = ?",
                                     cell_id)
        expected[key] = {
            "success_rate": rate, "n_attacked": n_attacked, "mean_confidence": confidence,
            "targets_per_image": (float(np.mean([n for n, in per_image])) if attack["mode"] == "targeted"
                                  else None),
            "image_success_rate": (float(np.mean([n > 0 for n, in per_image])) if attack["mode"] == "targeted"
                                   else None),
            "metadata": json.loads(metadata_text), "accuracy_on_set": attacked / selected,
        }
    return expected


def _markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Heading -> rows (header -> cell text) of every table in the markdown."""
    tables, heading = {}, None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("| ") and heading and heading not in tables:
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("| "):
                    break
                rows.append(dict(zip(header, (c.strip() for c in row.strip("|").split("|")))))
            tables[heading] = rows
    return tables


def _percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def test_json_numbers_equal_sql_recomputation(reference_store, built):
    _, result = built
    expected = _expected(reference_store)
    assert len(result["su2019"]) == len(expected) == 2
    for row in result["su2019"]:
        want = expected[(row["victim"], row["n_pixels"], row["mode"])]
        assert row["n_attacked"] == want["n_attacked"]
        assert row["success_rate"] == pytest.approx(want["success_rate"], abs=1e-12)
        assert row["mean_confidence"] == pytest.approx(want["mean_confidence"], abs=1e-12)
        assert row["targets_per_image"] == pytest.approx(want["targets_per_image"], abs=1e-12)
        assert row["image_success_rate"] == pytest.approx(want["image_success_rate"], abs=1e-12)
    (keras,) = result["keras"]
    assert keras["untargeted_success"] == pytest.approx(expected[("toy", 1, "untargeted")]["success_rate"])
    assert keras["targeted_success"] == pytest.approx(expected[("toy", 1, "targeted")]["success_rate"])
    assert keras["test_accuracy"] == 0.5 and keras["params"] == 30730
    assert keras["accuracy_on_set"] == pytest.approx(expected[("toy", 1, "untargeted")]["accuracy_on_set"])
    assert keras["accuracy_on_set"] == pytest.approx(1 - len(toy.MISLABELLED) / toy.CONFIG.images.count)
    # the toy sweep is not degenerate: some problems succeed, some fail
    assert 0 < expected[("toy", 1, "targeted")]["success_rate"] < 1


def test_markdown_tables_equal_sql_recomputation(reference_store, built):
    out, _ = built
    expected = _expected(reference_store)
    tables = _markdown_tables((out / "report.md").read_text())
    (untargeted,) = tables["Su et al. (TEVC 2019) style: untargeted"]
    (targeted,) = tables["Su et al. (TEVC 2019) style: targeted"]
    for row, mode in ((untargeted, "untargeted"), (targeted, "targeted")):
        want = expected[(row["Victim"], int(row["Pixels"]), mode)]
        assert int(row["Problems"]) == want["n_attacked"]
        assert _percent(row["Success rate"]) == pytest.approx(want["success_rate"], abs=5e-4)
        assert _percent(row["Confidence"]) == pytest.approx(want["mean_confidence"], abs=5e-4)
    want = expected[("toy", 1, "targeted")]
    assert float(targeted["Target classes per image"]) == pytest.approx(want["targets_per_image"], abs=5e-3)
    assert _percent(targeted["Images fooled (any target)"]) == pytest.approx(want["image_success_rate"], abs=5e-4)
    (keras,) = tables["one-pixel-attack-keras style"]
    assert _percent(keras["Attack success (untargeted)"]) == pytest.approx(
        expected[("toy", 1, "untargeted")]["success_rate"], abs=5e-4)
    assert _percent(keras["Attack success (targeted)"]) == pytest.approx(want["success_rate"], abs=5e-4)
    assert keras["Test accuracy"] == "50.0%" and keras["Parameters"] == "30,730"


def test_headers_name_store_config_and_command(reference_store, built):
    out, result = built
    markdown, latex = (out / "report.md").read_text(), (out / "report.tex").read_text()
    for text in (markdown, latex):
        assert str(reference_store.resolve()) in text
        assert COMMAND in text
        assert '"population_size": 8' in text  # the sweep config
        assert "reference" in text  # the command of the run that wrote the store
    assert latex.count(r"\begin{tabular}") == 3 and r"\%" in latex
    assert result["sweep_config"] == toy.CONFIG.to_json()


def test_figures_are_written(built):
    out, result = built
    for name in ("success_vs_pixels", "class_heatmap", "anytime", "queries_histogram", "examples"):
        path = result["files"][name]
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"]({path.split('/')[-1]})" in (out / "report.md").read_text()


def test_anytime_curve_and_heatmap_count_directly(reference_store):
    data = report.load(reference_store)
    records = data.records
    budget = 8 * 3
    queries, rate = report.anytime_curve(records, budget)
    assert np.all(np.diff(rate) >= 0) and queries[-1] == budget
    for q in (0, 8, 16, budget):
        direct = np.mean([r["success"] and r["queries"] <= q for r in records])
        assert rate[np.searchsorted(queries, q, side="right") - 1] == pytest.approx(direct)
    targeted = [r for r in records if r["target"] >= 0]
    successes, attempts = report.class_heatmap(targeted)
    assert attempts.sum() == len(targeted) and successes.sum() == sum(r["success"] for r in targeted)
    assert np.all(np.diag(attempts) == 0)
