"""Timing helpers the benchmarks share: forward images/s of a callable and the device name."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def images_per_s(forward: Callable[[], Any], size: int, seconds: float) -> float:
    """Median images/s of 3 timed passes of `forward()` (one warm call first, one batch of `size` each)."""
    forward()
    rates = []
    for _ in range(3):
        count, started = 0, time.perf_counter()
        while True:
            forward()
            count += size
            elapsed = time.perf_counter() - started
            if elapsed >= seconds / 3:
                break
        rates.append(count / elapsed)
    return float(np.median(rates))


def device_name() -> str:
    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
    return f"{device.platform} {device.device_kind}"
