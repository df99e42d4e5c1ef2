"""Your own model and data through the command line (issue 28): `--model FILE.py:FACTORY`
and `--data FILE.npz`, with a user-defined Flax CNN trained for a few steps on
synthetic 24 x 40 images (examples/own_model.py, the README's example); and every bad
input as one clear error before any work."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from deattack.cli import main as cli
from tests.support import numpy_write_pixels

REPO = Path(__file__).resolve().parents[2]
# The README's example factory, plus two broken ones for the error tests.
FACTORY = (REPO / "examples" / "own_model.py").read_text() + textwrap.dedent('''


    def not_a_victim():
        return 42


    def needs_arguments(size):
        return size
''')


@pytest.fixture()
def user_files(tmp_path):
    (tmp_path / "mine.py").write_text(FACTORY)
    namespace = {}
    exec(compile(FACTORY, "mine.py", "exec"), namespace)
    images, labels = namespace["synthetic_data"](count=12, seed=1)
    np.savez(tmp_path / "mine.npz", images=images, labels=labels, class_names=np.asarray(["red", "green", "blue"]))
    return tmp_path


def test_own_flax_model_on_own_npz_end_to_end(user_files, capsys):
    out = user_files / "run"
    argv = ["attack", "--model", str(user_files / "mine.py:build"), "--data", str(user_files / "mine.npz"),
            "--pixels", "3", "--images", "12", "--popsize", "30", "--max-gens", "20", "--out", str(out), "--json"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == "tiny-cnn" and summary["n_images"] >= 8  # the toy model learnt its task
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert json.loads((out / "config.json").read_text())["data"] == str(user_files / "mine.npz")
    assert any(r["success"] for r in records)
    with np.load(user_files / "mine.npz") as arrays:
        images = arrays["images"]
    namespace = {}
    exec(compile(FACTORY, "mine.py", "exec"), namespace)
    victim = namespace["build"]()
    for record in records:
        assert all(0 <= x < 40 and 0 <= y < 24 for x, y, *_ in record["pixels"])
        adversarial = numpy_write_pixels(images[record["image_index"]], record["pixels"])
        prediction = int(np.argmax(np.asarray(victim.logits(adversarial[None].astype(np.float32)))))
        assert (prediction != record["true_label"]) == record["success"]
        if record["success"]:
            assert prediction == record["adversarial_prediction"]


@pytest.mark.parametrize("model, data, message", [
    ("mine.py:missing", "mine.npz", "has no function 'missing'"),
    ("mine.py:not_a_victim", "mine.npz", "returned int, not a deattack.Victim"),
    ("mine.py:needs_arguments", "mine.npz", "the factory must take no arguments"),
    ("nowhere.py:build", "mine.npz", "nowhere.py does not exist"),
    ("no_such_package_xyz.models:build", "mine.npz", "cannot be imported"),
    ("mine.py:build", "labels-missing.npz", "has no 'labels' array"),
    ("mine.py:build", "two-channels.npz", "C = 1 or 3"),
    ("mine.py:build", "many-classes.npz", r"labels must be in \[0, 3\)"),
    ("mine.py:build", "empty-folder", "holds no images"),
    ("lenet", "mine.npz", "victim 'lenet' cannot take images of shape (24, 40, 3)"),
])
def test_bad_model_or_data_is_one_clear_error(user_files, capsys, model, data, message):
    np.savez(user_files / "labels-missing.npz", images=np.zeros((2, 24, 40, 3), np.uint8))
    np.savez(user_files / "two-channels.npz", images=np.zeros((2, 24, 40, 2), np.uint8), labels=np.zeros(2, int))
    np.savez(user_files / "many-classes.npz", images=np.full((2, 24, 40, 3), 99, np.uint8),
             labels=np.asarray([0, 7]))
    (user_files / "empty-folder" / "a").mkdir(parents=True)
    model = model if not model.startswith(("mine", "nowhere")) else str(user_files / model)
    argv = ["attack", "--model", model, "--data", str(user_files / data), "--popsize", "8", "--max-gens", "1",
            "--out", str(user_files / "run")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("deattack attack: error: "), error
    assert message in error[0] or __import__("re").search(message, error[0]), error[0]
    assert not (user_files / "run").exists()
