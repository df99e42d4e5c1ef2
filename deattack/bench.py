"""Throughput of the attack against the victim's raw jitted forward pass, in one run.

The limit is `jit(victim.apply_fn)` images/s at its best batch size; the attack's
queries/s is counted exactly (queries charged / wall time) after a warm-up run of
the same shapes, so compile time is excluded. The machine may be shared and noisy:
the forward limit is measured before and after the attack and averaged.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np


def forward_throughput(victim, batch_sizes: Sequence[int], seconds: float = 2.0) -> dict[int, float]:
    """Images/s of the jitted forward at each batch size (median of 3 timed passes)."""
    apply = jax.jit(victim.apply_fn)
    rng = np.random.default_rng(0)
    result = {}
    for size in batch_sizes:
        images = jax.device_put(rng.integers(0, 256, (size, 32, 32, 3)).astype(np.float32))
        jax.block_until_ready(apply(victim.variables, images))
        rates = []
        for _ in range(3):
            count, started = 0, time.perf_counter()
            while True:
                jax.block_until_ready(apply(victim.variables, images))
                count += size
                elapsed = time.perf_counter() - started
                if elapsed >= seconds / 3:
                    break
            rates.append(count / elapsed)
        result[int(size)] = float(np.median(rates))
    return result


def device_name() -> str:
    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
    return f"{device.platform} {device.device_kind}"


def _microbatch(victim, config, images) -> int:
    from deattack.attack.engine import make_fitness
    return make_fitness(config, victim.apply_fn, victim.variables, np.shape(images)[1:]).microbatch


def attack_vs_forward(victim, images: np.ndarray, labels: np.ndarray, image_indices: np.ndarray,
                      config, batch_sizes: Sequence[int]) -> dict[str, Any]:
    """Forward limit, attack queries/s and their ratio, measured side by side."""
    from deattack.attack import attack

    before = forward_throughput(victim, batch_sizes)
    attack(victim, images, labels, config, image_indices=image_indices + 1_000_000)  # warm-up
    started = time.perf_counter()
    results = attack(victim, images, labels, config, image_indices=image_indices)
    wall = time.perf_counter() - started
    after = forward_throughput(victim, batch_sizes)
    forward = {size: (before[size] + after[size]) / 2 for size in before}
    best = max(forward, key=forward.get)
    queries = results.summary["queries_this_run"]
    return {
        "device": device_name(), "model": victim.name, "pixels": config.pixels, "mode": config.mode,
        "operator": f"{config.mutation}/{config.crossover}/{config.adaptation}",
        "population_size": config.population_size, "max_generations": config.max_generations,
        "slots": config.slots, "images": int(len(images)),
        "microbatch": _microbatch(victim, config, images),
        "forward_img_per_s_by_batch": {str(k): round(v, 1) for k, v in forward.items()},
        "forward_img_per_s": round(forward[best], 1), "forward_best_batch": best,
        "attack_queries": int(queries), "attack_wall_s": round(wall, 2),
        "attack_queries_per_s": round(queries / wall, 1),
        "ratio_to_forward": round(queries / wall / forward[best], 3),
        "success_rate": results.summary["success_rate"],
        "queries_median": results.summary["queries_median"],
    }
