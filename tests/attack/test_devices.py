"""The slot axis sharded over 4 virtual CPU devices gives exactly the 1-device records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DRIVER = Path(__file__).with_name("devices_driver.py")


def _run(slots: int, devices: int, virtual_devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={virtual_devices}",
               JAX_PLATFORMS="cpu")
    completed = subprocess.run([sys.executable, str(DRIVER), str(slots), str(devices)], env=env,
                               capture_output=True, text=True, timeout=600, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_four_devices_equal_one_device():
    one = _run(slots=3, devices=1, virtual_devices=1)
    four = _run(slots=8, devices=0, virtual_devices=4)
    assert one["devices"] == 1 and four["devices"] == 4
    assert len(one["rows"]) == 10
    assert four["rows"] == one["rows"]
