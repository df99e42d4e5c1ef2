"""The defense evaluation driver end to end on the toy linear victim of tests/sweep:
clean accuracy and the oblivious (transfer) attack on a wrapper against independent
NumPy / scipy recomputations, the report's files and rows, resume, config clash."""

from __future__ import annotations

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from deattack.attack import AttackConfig
from deattack.defenses.evaluate import DefenseEvalConfig, run_defenses, verdicts
from deattack.defenses.report import write_report
from deattack.reports.sweep_report import load
from deattack.sweep.grid import ImageSet
from deattack.victims.victim import Victim
from tests.sweep import toy

CONFIG = DefenseEvalConfig(
    name="toy", pairs=(("median3+toy", "toy"), ("toy_deadpixel", "toy")), pixels=(1,), modes=("untargeted",),
    images=ImageSet(count=6), attack=AttackConfig(population_size=8, max_generations=2, slots=2),
    adaptive_attack=AttackConfig(population_size=8, max_generations=4, slots=2, fitness="margin"),
    adaptive_pixels=(1,), clean_images=8, chunk_images=6)


def _numpy_logits(victim, images):
    flat = np.asarray(images, np.float64).reshape(len(images), -1) / 255.0
    return (flat - 0.5) @ np.asarray(victim.variables["weights"], np.float64)


def _numpy_median3(images):
    return np.stack([ndimage.median_filter(np.asarray(i, np.float64), size=(3, 3, 1)) for i in images])


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from tests.defenses.conftest import numerics

    bare = toy.make_victim()
    images, labels = toy.make_dataset(bare)
    weights = np.asarray(bare.variables["weights"]) * np.random.default_rng(3).uniform(0.5, 1.5, (3072, 1))
    hardened = Victim(name="toy", apply_fn=toy.toy_logits,
                      variables={"weights": jnp.asarray(weights, jnp.float32), "bias": bare.variables["bias"]})
    inputs = {"victims": {"toy": bare, "toy_deadpixel": hardened}, "datasets": {"test": (images, labels)}}
    out = tmp_path_factory.mktemp("defenses") / "run"
    with numerics():
        result = run_defenses(CONFIG, out, **inputs)
        again = run_defenses(CONFIG, out, **inputs)
    return {"out": out, "result": result, "again": again, "bare": bare, "images": images, "labels": labels,
            "inputs": inputs}


def test_clean_accuracy_matches_numpy(evaluated):
    bare, images, labels = evaluated["bare"], evaluated["images"], evaluated["labels"]
    clean = evaluated["result"]["clean"]
    assert clean["toy"]["accuracy"] == pytest.approx(np.mean(np.argmax(_numpy_logits(bare, images), -1) == labels))
    filtered = np.argmax(_numpy_logits(bare, _numpy_median3(images)), -1)
    assert clean["median3+toy"]["accuracy"] == pytest.approx(np.mean(filtered == labels))
    assert clean["median3+toy"]["n_images"] == 8


def test_transfer_attack_matches_an_independent_replay(evaluated):
    bare, images = evaluated["bare"], evaluated["images"]
    data = load(evaluated["out"] / "default.sqlite")
    twin_cell = next(c for c in data.cells if c["victim"] == "toy")
    records = data.cell_records(twin_cell["cell_id"])
    assert records
    kept = fooled = 0
    for record in records:
        image = images[record["image_index"]]
        if np.argmax(_numpy_logits(bare, _numpy_median3(image[None]))[0]) != record["true_label"]:
            continue
        adversarial = np.asarray(image, np.float64).copy()
        for x, y, r, g, b in record["pixels"]:
            adversarial[y, x] = (r, g, b)
        kept += 1
        fooled += int(np.argmax(_numpy_logits(bare, _numpy_median3(adversarial[None]))[0]) != record["true_label"])
    (row,) = evaluated["result"]["transfer"]
    assert (row["defended"], row["n_pixels"], row["mode"]) == ("median3+toy", 1, "untargeted")
    assert (row["n_attacked"], row["n_success"]) == (kept, fooled)


def test_stores_resume_and_the_report_has_every_row(evaluated, tmp_path):
    assert set(evaluated["result"]["sweeps"]) == {"default", "adaptive"}
    assert all(s["units_run"] == 0 for s in evaluated["again"]["sweeps"].values())
    victims = {c["victim"] for c in load(evaluated["out"] / "default.sqlite").cells}
    assert victims == {"median3+toy", "toy", "toy_deadpixel"}
    assert {c["victim"] for c in load(evaluated["out"] / "adaptive.sqlite").cells} == {"toy", "toy_deadpixel"}

    report = write_report(evaluated["out"], tmp_path / "defenses.md")
    text = (tmp_path / "defenses.md").read_text()
    assert (tmp_path / "defenses_success_vs_pixels.png").stat().st_size > 1000
    assert "`median3+toy`" in text and "`toy_deadpixel`" in text
    rows = {(r["defended"], r["kind"]): r for r in report["rows"]}
    wrapper, trained = rows[("median3+toy", "wrapper")], rows[("toy_deadpixel", "trained")]
    transfer = evaluated["result"]["transfer"][0]
    assert wrapper["default_defended"]["n_attacked"] == transfer["n_attacked"]
    # The wrapper's adaptive attack is the end-to-end cell of the default sweep; a trained
    # defense's is its cell in the adaptive sweep.
    assert wrapper["adaptive_twin"] == wrapper["default_twin"]
    assert trained["adaptive_defended"] is not None and trained["adaptive_twin"] is not None
    accuracy = {v["defended"]: v["clean_accuracy"] for v in report["verdicts"]}
    assert accuracy["median3+toy"] == evaluated["result"]["clean"]["median3+toy"]["accuracy"]
    assert json.loads((tmp_path / "defenses.json").read_text())["verdicts"] == report["verdicts"]


def test_the_conclusion_is_a_note_file_not_a_config_field(evaluated, tmp_path):
    """The report prints a --note FILE's text as its conclusion; a run folder written when
    the conclusion was a config field still resumes and reports (its note is kept in its
    config.json, not printed)."""
    import shutil

    from deattack.defenses.evaluate import DefenseEvalConfig
    from tests.defenses.conftest import numerics

    assert "note" not in {f.name for f in dataclasses.fields(DefenseEvalConfig)}
    write_report(evaluated["out"], tmp_path / "d.md", figures=False, note="Dead pixels hold.\n")
    assert "## Conclusion\n\nDead pixels hold.\n" in (tmp_path / "d.md").read_text()
    write_report(evaluated["out"], tmp_path / "plain.md", figures=False)
    assert "## Conclusion" not in (tmp_path / "plain.md").read_text()
    folder = tmp_path / "old"
    shutil.copytree(evaluated["out"], folder)
    saved = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**saved, "note": "An old conclusion."}))
    with numerics():
        run_defenses(CONFIG, folder, **evaluated["inputs"])  # resumes: same evaluation
    assert json.loads((folder / "config.json").read_text())["note"] == "An old conclusion."
    write_report(folder, tmp_path / "old.md", figures=False)
    assert (tmp_path / "old.md").read_text() == (tmp_path / "plain.md").read_text().replace(
        str(evaluated["out"]), str(folder))


def test_another_config_in_the_same_folder_is_refused(evaluated):
    with pytest.raises(ValueError, match="another config"):
        run_defenses(dataclasses.replace(CONFIG, pixels=(1, 3)), evaluated["out"], **evaluated["inputs"])


def test_a_folder_written_before_a_new_attack_field_still_resumes(evaluated, tmp_path):
    """config.json of an older version lacks fields added since (at their defaults then)."""
    import shutil

    from tests.defenses.conftest import numerics

    old = tmp_path / "old"
    shutil.copytree(evaluated["out"], old)
    saved = json.loads((old / "config.json").read_text())
    for key in ("attack", "adaptive_attack"):
        del saved[key]["forward"], saved[key]["neighbour_radius"]
    del saved["aware_attack"]
    (old / "config.json").write_text(json.dumps(saved))
    with numerics():
        again = run_defenses(CONFIG, old, **evaluated["inputs"])
    assert all(s["units_run"] == 0 for s in again["sweeps"].values())
    saved["attack"]["pixels"] = 2  # ... but a real difference is still one
    (old / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="another config"):
        run_defenses(CONFIG, old, **evaluated["inputs"])


def test_shards_in_one_folder_give_the_unsharded_rows(evaluated, tmp_path):
    """Two shards, one after the other, into one folder: every unit once, rows identical."""
    from tests.defenses.conftest import numerics

    sharded = tmp_path / "sharded"
    with numerics():
        first = run_defenses(CONFIG, sharded, shard="0/2", **evaluated["inputs"])
        second = run_defenses(CONFIG, sharded, shard=(1, 2), **evaluated["inputs"])
    for kind in ("default", "adaptive"):
        ran = first["sweeps"][kind]["units_run"] + second["sweeps"][kind]["units_run"]
        assert ran == evaluated["result"]["sweeps"][kind]["units_run"] > 1
        assert first["sweeps"][kind]["units_run"] >= 1 and second["sweeps"][kind]["units_run"] >= 1

        def rows(folder):
            data = load(folder / f"{kind}.sqlite")
            return sorted((c["victim"], c["n_pixels"], c["mode"], r["image_index"], r["target"], r["success"],
                           r["queries"], json.dumps(r["pixels"]))
                          for c in data.cells for r in data.cell_records(c["cell_id"]))

        assert rows(sharded) == rows(evaluated["out"])
    assert second["transfer"] == evaluated["result"]["transfer"]
    with pytest.raises(ValueError, match="shard"):
        run_defenses(CONFIG, tmp_path / "bad", shard="2/2", **evaluated["inputs"])
    assert not (tmp_path / "bad").exists()  # refused before the folder is made


@pytest.mark.parametrize("pairs, match", [((), "empty"), ((("lenet", "lenet"),), "itself"),
                                          ((("lenet_deadpixel", "median3+lenet"),), "undefended")])
def test_bad_pairs_name_the_problem(pairs, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(CONFIG, pairs=pairs)


def test_also_folders_join_the_tables_with_their_own_verdicts(evaluated, tmp_path):
    """A wrappers-only folder on other images: its rows and verdict join the main report,
    each marked with its image set, and its verdict is the one its own report gives."""
    from tests.defenses.conftest import numerics

    wrappers = dataclasses.replace(CONFIG, name="toy_wrappers", pairs=(("median3+toy", "toy"),),
                                   images=ImageSet(start=2, count=6))
    with numerics():
        run_defenses(wrappers, tmp_path / "wrappers", **evaluated["inputs"])
    alone = write_report(tmp_path / "wrappers", tmp_path / "alone.md", figures=False)
    main = write_report(evaluated["out"], tmp_path / "main.md", figures=False)
    both = write_report(evaluated["out"], tmp_path / "both.md", also=(tmp_path / "wrappers",))

    strip = lambda items: [{k: v for k, v in item.items() if k != "scale"} for item in items]  # noqa: E731
    assert strip(both["verdicts"]) == main["verdicts"]
    (extra,) = both["also"]
    assert strip(extra["verdicts"]) == alone["verdicts"]
    assert strip(extra["rows"]) == alone["rows"]
    assert {v["scale"] for v in both["verdicts"]} == {"test [0, 6)"}
    assert {v["scale"] for v in extra["verdicts"]} == {"test [2, 8)"}
    text = (tmp_path / "both.md").read_text()
    assert "| Defense | Images | Kind |" in text
    assert "| `median3+toy` | test [0, 6) |" in text and "| `median3+toy` | test [2, 8) |" in text
    assert f"- also `{tmp_path / 'wrappers'}` (`toy_wrappers`): images test [2, 8)" in text
    assert "default attack as above; adaptive attack as above" in text
    assert "| Images |" not in (tmp_path / "main.md").read_text()
    assert (tmp_path / "both_success_vs_pixels.png").stat().st_size > 1000
    assert json.loads((tmp_path / "both.json").read_text())["also"][0]["config"]["name"] == "toy_wrappers"

    with pytest.raises(FileNotFoundError, match="not a defense run folder"):
        write_report(evaluated["out"], tmp_path / "bad.md", also=(tmp_path / "nowhere",))


def test_reuse_only_copies_the_twin_cells_and_runs_the_transfer(evaluated, tmp_path):
    """A wrappers-only evaluation on the same images: --reuse of the full run copies the
    twin's and the wrapper's cells, runs nothing, and gives the full run's transfer rows;
    with only the twin's cells there the wrapper's cells stay pending."""
    from tests.defenses.conftest import numerics

    wrappers = dataclasses.replace(CONFIG, name="toy_wrappers", pairs=(("median3+toy", "toy"),))
    with numerics():
        result = run_defenses(wrappers, tmp_path / "w", reuse=(evaluated["out"],), reuse_only=True,
                              **evaluated["inputs"])
    default = result["sweeps"]["default"]
    assert default["units_run"] == 0 and default["units_reused"] == default["units_total"] > 0
    assert default["units_pending"] == 0
    assert result["transfer"] == evaluated["result"]["transfer"]

    def rows(folder):
        data = load(folder / "default.sqlite")
        return sorted((c["victim"], r["image_index"], r["success"], r["queries"], json.dumps(r["pixels"]))
                      for c in data.cells for r in data.cell_records(c["cell_id"]))

    assert rows(tmp_path / "w") == [r for r in rows(evaluated["out"]) if r[0] != "toy_deadpixel"]

    # Only the twin's cells to copy: the wrapper's end-to-end cells are left for a later run.
    twin_only = tmp_path / "twin"
    with numerics():
        run_defenses(dataclasses.replace(wrappers, pairs=(("toy_deadpixel", "toy"),), name="twin"), twin_only,
                     **evaluated["inputs"])
        partial = run_defenses(wrappers, tmp_path / "w2", reuse=(twin_only,), reuse_only=True, **evaluated["inputs"])
    assert partial["sweeps"]["default"]["units_run"] == 0
    assert partial["sweeps"]["default"]["units_pending"] >= 1
    assert partial["transfer"] == evaluated["result"]["transfer"]  # needs only the twin's cells

    with pytest.raises(ValueError, match="not a defense run folder"):
        run_defenses(wrappers, tmp_path / "w3", reuse=(tmp_path / "nowhere",), **evaluated["inputs"])
    with pytest.raises(ValueError, match="--reuse-only"):
        run_defenses(wrappers, tmp_path / "w4", reuse_only=True, **evaluated["inputs"])
    assert not (tmp_path / "w3").exists() and not (tmp_path / "w4").exists()


def _cell(rate):
    return None if rate is None else {"success_rate": rate, "n_attacked": 40, "median_queries_success": 400.0}


@pytest.mark.parametrize("cells, verdict", [
    # (default defended, default twin, adaptive defended, adaptive twin) per (pixels, mode) cell
    ([(0.1, 0.6, 0.2, 0.7), (0.3, 0.8, 0.4, 0.8)], "holds"),
    ([(0.0, 0.6, 0.2, 0.6), (0.0, 0.8, 0.75, 0.8)], "partly"),
    ([(0.0, 0.6, 0.55, 0.6), (0.0, 0.8, 0.8, 0.8)], "only hides"),
    ([(0.55, 0.6, 0.55, 0.6), (0.75, 0.8, 0.8, 0.8)], "does not hold"),
    # A twin fooled under 10 % of the time tells nothing: only the other cell counts.
    ([(0.0, 0.05, 0.0, 0.05), (0.1, 0.8, 0.2, 0.8)], "holds"),
    ([(0.0, 0.05, 0.0, 0.05), (0.0, 0.0, None, 0.0)], "undecided"),
])
def test_the_verdict_rule(cells, verdict):
    config = dataclasses.replace(CONFIG, pairs=(("toy_deadpixel", "toy"),))
    rows = [{"defended": "toy_deadpixel", "twin": "toy", "kind": "trained", "n_pixels": k, "mode": "untargeted",
             "default_defended": _cell(a), "default_twin": _cell(b), "adaptive_defended": _cell(c),
             "adaptive_twin": _cell(d)} for k, (a, b, c, d) in zip((1, 3), cells)]
    clean = {"toy": {"accuracy": 0.9}, "toy_deadpixel": {"accuracy": 0.88}}
    (found,) = verdicts(config, rows, clean)
    assert verdict in found["verdict"]
    assert found["accuracy_cost"] == pytest.approx(0.02)
    counted = [(d - c) for a, b, c, d in cells if c is not None and d is not None and d >= 0.1]
    assert found["min_adaptive_drop"] == (pytest.approx(min(counted)) if counted else None)


# --- the aware sweep: repair wrappers attacked with colours under the repair's threshold ---


def test_a_repair_wrapper_gets_an_aware_sweep_with_its_threshold_as_radius():
    config = dataclasses.replace(CONFIG, pairs=(("median3+toy", "toy"), ("repair:threshold=32+toy", "toy")))
    sweeps = config.sweeps()
    assert set(sweeps) == {"default", "aware"}  # no trained defense: no adaptive sweep
    assert sweeps["aware"].victims == ("repair:threshold=32+toy",)
    assert sweeps["aware"].attack.neighbour_radius == 32.0
    assert sweeps["default"].attack.neighbour_radius == 0.0
    assert dataclasses.replace(sweeps["aware"].attack, neighbour_radius=0.0) == sweeps["default"].attack
    assert "aware" not in CONFIG.sweeps()  # no repair: nothing to be aware of
    assert "aware" not in dataclasses.replace(config, aware_attack=False).sweeps()
    with pytest.raises(ValueError, match="thresholds differ"):
        dataclasses.replace(config, pairs=(("repair:threshold=32+toy", "toy"), ("repair+toy", "toy"))).sweeps()
    with pytest.raises(ValueError, match="aware_attack"):
        dataclasses.replace(config, aware_attack="yes")


def test_only_the_aware_sweep_runs_and_the_stronger_attack_is_the_adaptive_cell(evaluated, tmp_path):
    """--only aware into a folder whose default sweep ran: the aware cells run alone; each
    adaptive cell of the repair wrapper is the stronger of end to end and aware (marked †)."""
    from tests.defenses.conftest import numerics

    config = dataclasses.replace(CONFIG, name="toy_repair", pairs=(("repair:threshold=64+toy", "toy"),))
    folder = tmp_path / "repair"
    with numerics():
        first = run_defenses(config, folder, only=("default",), **evaluated["inputs"])
        assert set(first["sweeps"]) == {"default"} and not (folder / "aware.sqlite").exists()
        second = run_defenses(config, folder, only=("aware",), **evaluated["inputs"])
    assert set(second["sweeps"]) == {"aware"} and second["sweeps"]["aware"]["units_run"] >= 1
    report = write_report(folder, tmp_path / "repair.md", figures=False)
    (row,) = report["rows"]
    end_to_end, aware = row["end_to_end_defended"], row["aware_defended"]
    assert end_to_end["n_attacked"] == aware["n_attacked"] > 0  # the same problems
    stronger = aware if aware["success_rate"] > end_to_end["success_rate"] else end_to_end
    assert row["adaptive_defended"] == stronger
    assert row["adaptive_by"] == ("aware" if stronger is aware else "end to end")
    text = (tmp_path / "repair.md").read_text()
    assert ("†" in text.split("## Attack success")[1]) == (row["adaptive_by"] == "aware")
    mirror = lambda i: abs(i) if i < 32 else 62 - i  # noqa: E731  (numpy "reflect" on 32 pixels)
    data = load(folder / "aware.sqlite")
    for record in data.cell_records(data.cells[0]["cell_id"]):
        (x, y, *colour), = record["pixels"]
        image = evaluated["images"][record["image_index"]].astype(np.float64)
        neighbours = [image[mirror(y + dy), mirror(x + dx)] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                      if (dy, dx) != (0, 0)]
        assert np.all(np.abs(np.asarray(colour) - np.median(neighbours, axis=0)) <= 64)
    with pytest.raises(ValueError, match="--only adaptive"):
        run_defenses(config, folder, only=("adaptive",), **evaluated["inputs"])


@pytest.mark.parametrize("end_to_end, aware, by", [
    (0.2, 0.5, "aware"), (0.5, 0.2, "end to end"), (0.3, 0.3, "end to end"), (0.3, None, "end to end"),
    (None, 0.1, "aware"), (None, None, None)])
def test_the_stronger_of_the_two_wrapper_attacks(end_to_end, aware, by):
    from deattack.defenses.evaluate import _stronger

    cell, chosen = _stronger(_cell(end_to_end), _cell(aware))
    assert chosen == by
    assert cell == {"aware": _cell(aware), "end to end": _cell(end_to_end), None: None}[by]
