"""Robust accuracy against the number of pixels (issue 29), on a victim whose weakness
needs a known number of pixels per image: class 1 wins once at least t pixels are pure
blue (0, 0, 255), t read from the image's mean brightness (100 -> 1, 150 -> 2, 200 -> 3,
250 -> 4; a few changed pixels move the mean by < 1 level). So image i is fooled first
at k = t_i, and the robust accuracy at each k is known by hand."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from deattack.attack import AttackConfig
from deattack.attack.robustness import robust_accuracy
from deattack.cli import main as cli
from deattack.victims.victim import Victim

VICTIM_SOURCE = textwrap.dedent('''
    import jax.numpy as jnp
    import deattack


    def counting_logits(images):
        """[N, H, W, 3] in [0, 255] -> [N, 2]: class 1 once >= t pixels are pure blue."""
        blue = jnp.clip((images[..., 2] - images[..., 0] - images[..., 1] - 200.0) / 55.0, 0.0, 1.0)
        needed = jnp.round(images.mean(axis=(1, 2, 3)) / 50.0) - 1.0
        count = blue.sum(axis=(1, 2))
        return jnp.stack([jnp.zeros_like(count), count - needed + 0.5], axis=-1)


    def build():
        return deattack.Victim.from_fn(counting_logits, name="counting")
''')
NAMESPACE: dict = {}
exec(compile(VICTIM_SOURCE, "counting.py", "exec"), NAMESPACE)
BRIGHTNESS = (100, 150, 200, 250, 150)  # t = 1, 2, 3, 4, 2
EXPECTED_SMALLEST = [1, 2, 3, -1, 2]     # -1: not fooled with k <= 3
CONFIG = AttackConfig(population_size=40, max_generations=30, init="corners", mutation="rand/1-snap-local",
                      crossover="exp", slots=4, seed=2)


def _images() -> np.ndarray:
    return np.stack([np.full((8, 8, 3), b, np.uint8) for b in BRIGHTNESS])


def test_robust_accuracy_by_hand(tmp_path):
    victim = NAMESPACE["build"]()
    result = robust_accuracy(victim, _images(), np.zeros(5, np.int64), CONFIG, ks=(1, 2, 3),
                             image_indices=[10, 11, 12, 13, 14], out=tmp_path)
    assert result.smallest_k.tolist() == EXPECTED_SMALLEST
    assert result.robust_accuracy == {1: 4 / 5, 2: 2 / 5, 3: 1 / 5}
    # Anytime L0: an image fooled at k is not attacked at a larger k.
    attacked = {k: sorted(r["image_index"] for r in records) for k, records in result.records.items()}
    assert attacked == {1: [10, 11, 12, 13, 14], 2: [11, 12, 13, 14], 3: [12, 13]}
    for k, records in result.records.items():
        stored = [json.loads(line) for line in (tmp_path / f"k-{k}" / "results.jsonl").read_text().splitlines()]
        assert sorted(r["image_index"] for r in stored) == attacked[k]
        assert all(len(r["pixels"]) == k for r in records)
    assert result.queries.sum() == sum(r["queries"] for rs in result.records.values() for r in rs)
    summary = result.summary()
    assert [row["fooled"] for row in summary["rows"]] == [1, 3, 4]
    assert summary["n_correct"] == 5 and summary["smallest_k"][13] == -1


def test_a_clean_misclassification_counts_against_robust_accuracy():
    victim = NAMESPACE["build"]()
    labels = np.asarray([0, 1])  # image 1 is classified 0: wrong before any attack
    result = robust_accuracy(victim, _images()[[0, 3]], labels, CONFIG, ks=(1,))
    assert result.correct.tolist() == [True, False] and result.smallest_k.tolist() == [1, 0]
    assert result.robust_accuracy == {1: 0.0}


@pytest.mark.parametrize("ks", [(), (2, 1), (0, 1), (1, 1)])
def test_bad_ks(ks):
    with pytest.raises(ValueError, match="ks must be increasing"):
        robust_accuracy(Victim.from_fn(lambda x: x[:, 0, 0, :2]), _images(), np.zeros(5, np.int64), CONFIG, ks=ks)


def test_targets_all_is_refused():
    with pytest.raises(ValueError, match="one problem an image"):
        robust_accuracy(NAMESPACE["build"](), _images(), np.zeros(5, np.int64),
                        AttackConfig(mode="targeted"), ks=(1,))


def test_the_command_writes_the_table_and_figure(tmp_path, capsys):
    (tmp_path / "counting.py").write_text(VICTIM_SOURCE)
    np.savez(tmp_path / "data.npz", images=_images(), labels=np.zeros(5, np.int64),
             class_names=np.asarray(["plain", "blue"]))
    out = tmp_path / "robust"
    argv = ["robustness", "--model", f"{tmp_path}/counting.py:build", "--data", str(tmp_path / "data.npz"),
            "--ks", "1,2,3", "--popsize", "40", "--max-gens", "30", "--operator", "rand/1-snap-local",
            "--crossover", "exp", "--set", "init='corners'", "--set", "slots=4", "--seed", "2",
            "--out", str(out), "--json"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["robust_accuracy"] for row in summary["rows"]] == [0.8, 0.4, 0.2]
    assert (out / "robust_accuracy.png").is_file() and "| 3 | 20.0% |" in (out / "robustness.md").read_text()
    assert cli.main(argv) == 0  # resumes: every k's folder is complete
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"] == summary["rows"]
    assert cli.main([*argv[:5], "--ks", "3,1", "--out", str(tmp_path / "x")]) == 2
    assert "--ks 3,1: ks must be increasing" in capsys.readouterr().err
