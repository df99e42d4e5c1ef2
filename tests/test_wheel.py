"""Installed like a library (issue 28): a wheel built from this checkout carries the
shipped victims, and, installed into a fresh virtual environment, attacks one image
from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from deattack.victims.loading import shipped_victims
from tests.support import requires_cifar10

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(REPO)], check=True, cwd=out, capture_output=True)
    (path,) = out.glob("deattack-*.whl")
    return path


def test_the_wheel_carries_every_shipped_victim(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for victim in shipped_victims():
        assert f"deattack/checkpoints/{victim}.msgpack" in names and f"deattack/checkpoints/{victim}.json" in names
    assert not any("train_state" in name for name in names)


@requires_cifar10
def test_installed_wheel_attacks_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies come from this test's environment (a path line adds its
    # site-packages but runs none of its .pth files, so its editable deattack stays out).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": ""}
    where = subprocess.run([str(python), "-c", "import deattack; print(deattack.__file__)"], cwd=elsewhere,
                           check=True, capture_output=True, text=True, env=env).stdout
    assert where.startswith(str(venv)), where
    attack = subprocess.run([str(venv / "bin" / "deattack"), "attack", "--model", "lenet", "--indices", "3",
                             "--popsize", "8", "--max-gens", "1", "--out", "run", "--json"],
                            cwd=elsewhere, capture_output=True, text=True, env=env)
    assert attack.returncode == 0, attack.stderr[-2000:]
    summary = json.loads(attack.stdout.strip().splitlines()[-1])
    assert summary["model"] == "lenet" and summary["n_problems"] == 1
    assert (elsewhere / "run" / "results.jsonl").is_file()
