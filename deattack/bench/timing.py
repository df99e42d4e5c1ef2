"""Timing helpers the benchmarks share: forward images/s of a callable, the device name,
and a count of the XLA compilations inside a block."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
from collections.abc import Callable, Iterator
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


# jax.monitoring's event for building one XLA executable (jax._src.dispatch's
# BACKEND_COMPILE_EVENT): it fires on every jit cache miss and never on a hit.
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass
class Compilations:
    """XLA programs built inside a `counting_compilations()` block and their seconds."""

    count: int = 0
    seconds: float = 0.0
    names: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def counting_compilations() -> Iterator[Compilations]:
    """Counts the programs jax compiles inside the block: a timed run that compiles is
    timing the compiler, not the attack."""
    tally = Compilations()

    def listener(event: str, duration: float, **metadata) -> None:
        if event == COMPILE_EVENT:
            tally.count += 1
            tally.seconds += duration
            tally.names.append(str(metadata.get("fun_name", "?")))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield tally
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
