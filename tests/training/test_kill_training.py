"""kill -9 a training run at five points (three seeded random, two chosen windows),
rerunning the same command after each: the final weights equal an uninterrupted run's
bit for bit, and every epoch is exported and recorded exactly once.

The windows: a checkpoint's metadata committed but its weights not yet renamed into
place (the committed checkpoint must load), and the last training state saved but the
export not yet written (the rerun must still export the final weights).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jax
import numpy as np

from deattack import checkpoint
from deattack.models import get_model
from deattack.training import train
from tests.killing import run_and_kill
from tests.training.train_driver import CONFIG

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("train_driver.py")


def _run(workdir: Path, export: Path, env: dict, hang: str | None) -> str:
    command = [sys.executable, str(DRIVER), str(workdir), str(export), *([hang] if hang is not None else [])]
    return run_and_kill(command, REPO, env, expect_hang=hang is not None)


def _assert_same_leaves(a, b) -> None:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for leaf_a, leaf_b in zip(leaves_a, leaves_b):
        assert np.asarray(leaf_a).dtype == np.asarray(leaf_b).dtype
        np.testing.assert_array_equal(np.asarray(leaf_a), np.asarray(leaf_b))


def _epochs(workdir: Path) -> list[int]:
    lines = (workdir / "history.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def test_kill_nine_at_several_points_then_resume_gives_identical_weights(tmp_path):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"), PYTHONPATH=str(REPO),
               JAX_PLATFORMS="cpu")
    # The uninterrupted run, in a process like the others (it also fills the compilation cache).
    assert _run(tmp_path / "reference", tmp_path / "reference_export", env, None) == "DONE"
    rng = np.random.default_rng(9)
    # (A kill before a save's commit point leaves the old pair: test_safe_loading.py.)
    plan = [
        f"@{rng.integers(1, 13)}",  # the n-th event: a step, or a file of a checkpoint written or renamed
        "renamed state.json@1",  # the new metadata is committed, the weights not yet renamed
        f"@{rng.integers(1, 13)}",
        f"@{rng.integers(1, 13)}",
        "renamed state.json (step 12)@1",  # final state saved, final export not yet written
    ]
    workdir, export = tmp_path / "killed", tmp_path / "killed_export"
    stops = [_run(workdir, export, env, hang) for hang in plan]
    assert stops[-1] == "HANG renamed state.json (step 12)", stops
    assert _run(workdir, export, env, None) == "DONE"

    # Bit-identical weights, optimiser state and step: every leaf of what the checkpoints load.
    model = get_model(CONFIG.model)
    template = train.init_state(CONFIG, model, train.make_optimizer(CONFIG, steps_per_epoch=6))
    _assert_same_leaves(checkpoint.restore(workdir / "state", template)[0],
                        checkpoint.restore(tmp_path / "reference" / "state", template)[0])
    variables = {"params": template.params, "batch_stats": template.batch_stats}
    _assert_same_leaves(checkpoint.restore(export, variables)[0],
                        checkpoint.restore(tmp_path / "reference_export", variables)[0])
    exported = checkpoint.read_metadata(export)
    assert exported["epochs_done"] == CONFIG.epochs
    assert exported["test_accuracy"] == checkpoint.read_metadata(tmp_path / "reference_export")["test_accuracy"]
    assert _epochs(workdir) == list(range(1, CONFIG.epochs + 1)), stops
