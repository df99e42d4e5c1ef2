"""Queries/s of an attack on a PyTorch model through Victim.from_torch (a batched host
callback) against the same model as a JAX victim, side by side in one process.

  python scripts/bench_torch_victim.py --model lenet --images 8 --out docs/results/bench_torch_victim.jsonl

The torch model is the victim's port (deattack.bench.peers.torch_port: same function,
same weights). Each victim is attacked once to compile / warm up, then `--repeats`
times interleaved (JAX, torch, JAX, torch, ...) so load on a shared machine hits both
alike; the median queries/s of each and their ratio are reported, with the callback's
share of calls. One JSON line per run, with the command and the JAX / torch versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np


def _timed(victim, images, labels, config) -> tuple[float, int]:
    from deattack.attack import attack

    started = time.perf_counter()
    results = attack(victim, images, labels, config)
    return time.perf_counter() - started, int(sum(r["queries"] for r in results.records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--max-gens", type=int, default=10)
    parser.add_argument("--popsize", type=int, default=400)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="append the JSON line to this file")
    args = parser.parse_args()

    import torch

    from deattack import data
    from deattack.attack import paper_config
    from deattack.bench.peers.torch_port import port
    from deattack.victims.loading import load_victim
    from deattack.victims.victim import Victim, correctly_classified

    images, labels = data.load_split("test")
    jax_victim = load_victim(args.model)
    chosen = np.flatnonzero(correctly_classified(jax_victim, images[:200], labels[:200]))[:args.images]
    images, labels = images[chosen], labels[chosen]
    torch_victim = Victim.from_torch(port(jax_victim), name=f"{args.model}-torch", input_range=(0, 255))
    # A budget no image is likely to end early under, so both run the same queries.
    config = paper_config(pixels=1, population_size=args.popsize, max_generations=args.max_gens,
                          slots=args.slots, confidence=0.99)
    victims = {"jax": jax_victim, "torch_callback": torch_victim}
    for victim in victims.values():
        _timed(victim, images, labels, config)  # compile and warm up
    rates: dict[str, list[float]] = {name: [] for name in victims}
    for _ in range(args.repeats):
        for name, victim in victims.items():
            wall, queries = _timed(victim, images, labels, config)
            rates[name].append(queries / wall)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    line = {
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "model": args.model, "images": len(chosen), "population": args.popsize, "max_generations": args.max_gens,
        "slots": args.slots, "queries_per_s": {k: round(v, 1) for k, v in medians.items()},
        "queries_per_s_runs": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
        "torch_over_jax": round(medians["torch_callback"] / medians["jax"], 3),
        "jax": jax.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "backend": jax.default_backend(), "machine": platform.machine(), "cpus": jax.local_device_count(),
        "date": time.strftime("%Y-%m-%d"),
    }
    text = json.dumps(line)
    print(text)
    if args.out:
        with Path(args.out).open("a") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
