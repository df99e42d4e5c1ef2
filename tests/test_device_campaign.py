"""The GPU campaign (scripts/device_run.sh, issue 30) runs end to end in its dry-run mode
on CPU: every stage at tiny sizes, results packed after each, so a lent GPU's few minutes
are not spent finding a typo."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.support import requires_cifar10

REPO = Path(__file__).resolve().parents[1]


@requires_cifar10
def test_the_campaign_dry_run_runs_every_stage(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "PY": sys.executable, "RUNS": str(tmp_path / "runs"), "RESUME": "0",
           "DEATTACK_CIFAR_ARRAYS": str(tmp_path / "no-arrays"), "JAX_PLATFORMS": "cpu", "BENCH_PEERS_DRY": "scipy"}
    run = subprocess.run(["bash", str(REPO / "scripts" / "device_run.sh"), str(tmp_path / "out")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    for stage in ("setup", "profile", "peers", "train", "headline", "tables"):
        assert f"stage {stage} rc 0" in log, (stage, log[-3000:])
    with tarfile.open(tmp_path / "out" / "results.tar.gz") as packed:
        names = set(packed.getnames())
    for expected in ("./bench_gpu.jsonl", "./bench_peers_gpu.jsonl", "./headline/headline-resnet20-1px.sqlite",
                     "./tables/su2019_sweep-smoke.sqlite", "./checkpoints/resnet20-par.msgpack"):
        assert expected in names, (expected, sorted(names)[:40])
    assert any(name.startswith("./profile-2-default") for name in names)
