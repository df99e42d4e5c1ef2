"""What `deattack attack` tells a new user (issue 27, items 10, 15, 16): the summary names
the classes (the dataset's names), shows how much of the image the pixels are, and lists
the adversarial images file it wrote next to the records and the figure."""

from __future__ import annotations

import numpy as np

from deattack.cli import attack as attack_command
from deattack.cli import main as cli
from tests.attack.red_dot import TRUE_CLASS, WEAK_X, WEAK_Y, grey_images, make_victim

NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The red-dot victim (tests/attack/red_dot.py): class 3 (cat), class 7 (horse) when
# image[20, 12] is pure red; this budget finds it on every image.
RED_DOT = ["--model", "red-dot", "--pixels", "1", "--operator", "current-to-pbest/1", "--popsize", "50",
           "--max-gens", "40", "--seed", "0", "--slots", "4"]


def test_summary_names_classes_scale_and_the_files(tmp_path, capsys, monkeypatch):
    images, labels = grey_images(3), np.full(3, TRUE_CLASS)
    monkeypatch.setattr("deattack.victims.loading.load_victim", lambda spec: make_victim())
    monkeypatch.setattr("deattack.data.load_split", lambda split: (images, labels))
    monkeypatch.setattr("deattack.data.class_names", lambda *args, **kwargs: NAMES)
    out = tmp_path / "run"
    assert cli.main(["attack", *RED_DOT, "--images", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 of 1,024 pixels (0.1 %) / untargeted" in printed
    assert "classes attacked" in printed and "cat 3" in printed
    for index in range(3):
        assert f"image {index}: cat (0.94) -> horse (" in printed
    assert f"1 px at ({WEAK_X}, {WEAK_Y})" in printed
    rows = {line.split("  ")[1]: line.split()[-1] for line in printed.splitlines() if line.startswith("  ")}
    assert rows["adversarial images"] == str(out / "adversarial.npz")
    with np.load(out / "adversarial.npz") as stored:
        assert stored["indices"].tolist() == [0, 1, 2]
    assert (out / "examples.png").is_file()


def _success(index: int, target: int = -1) -> dict:
    return {"image_index": index, "true_label": 3, "target": target, "success": True, "status": "success",
            "pixels": [[x, 2 * x, 255, 0, 0] for x in range(5)], "adversarial_prediction": 5,
            "adversarial_confidence": 0.61, "original_prediction": 3, "original_confidence": 0.93}


def test_at_most_ten_successes_are_listed_with_their_classes(capsys):
    records = [_success(i, target=5) for i in range(12)] + [dict(_success(12), success=False, status="failed")]
    summary = {"queries_this_run": 1, "n_problems": 13, "model": "lenet", "pixels": 5, "mode": "targeted",
               "mutation": "rand/1", "crossover": "none", "adaptation": "constant", "population_size": 4,
               "max_generations": 1, "n_images": 13, "n_success": 12, "n_attacked": 13, "success_rate": 12 / 13,
               "queries_mean": 8.0, "queries_median": 8.0, "queries_median_success": 8.0, "wall_s": 1.0,
               "queries_per_s": 8.0, "out": "runs/x", "adversarial": "runs/x/adversarial.npz"}
    attack_command._print_summary(summary, records, NAMES, (32, 32))
    printed = capsys.readouterr().out
    assert "5 of 1,024 pixels (0.5 %) / targeted" in printed
    assert "image 9: cat (0.93) -> dog (0.61), target dog, 5 px at (0, 0) (1, 2) (2, 4) ..." in printed
    assert "image 10:" not in printed and "and 2 more" in printed
