"""Attack queries/s against the victim's raw jitted forward throughput, in one run.

  python scripts/bench_attack.py --model resnet20 --images 8 --popsize 400 --max-gens 10

1. Raw forward: images/s of `jit(victim.apply_fn)` at each batch size (median of
   repeats, compile excluded); the best over batch sizes is "the limit".
2. Attack: the paper config (DE/rand/1, F=0.5, no crossover) on the first N correctly
   classified test images, after a warm-up run of the same shapes (so compile time is
   excluded); queries/s = queries charged / wall time.
Prints one JSON object (and appends it to --out if given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np


def forward_throughput(victim, batch_sizes, repeats=3, min_seconds=2.0):
    apply = jax.jit(victim.apply_fn)
    rng = np.random.default_rng(0)
    result = {}
    for size in batch_sizes:
        images = jax.device_put(rng.integers(0, 256, (size, 32, 32, 3)).astype(np.float32))
        jax.block_until_ready(apply(victim.variables, images))
        rates = []
        for _ in range(repeats):
            count, started = 0, time.perf_counter()
            while True:
                jax.block_until_ready(apply(victim.variables, images))
                count += size
                elapsed = time.perf_counter() - started
                if elapsed >= min_seconds / repeats:
                    break
            rates.append(count / elapsed)
        result[size] = float(np.median(rates))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--pixels", type=int, default=1)
    parser.add_argument("--mode", default="untargeted")
    parser.add_argument("--popsize", type=int, default=400)
    parser.add_argument("--max-gens", type=int, default=10)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--microbatch", type=int, default=0)
    parser.add_argument("--batch-sizes", default="32,64,128,256,512,1024")
    parser.add_argument("--out", help="append the JSON line to this file")
    args = parser.parse_args()

    from deattack import data
    from deattack.attack import attack, paper_config
    from deattack.victim import correctly_classified, load_victim

    victim = load_victim(args.model)
    images, labels = data.load_split("test")
    pool = np.arange(200)
    correct = pool[correctly_classified(victim, images[pool], labels[pool])][: args.images]

    forward = forward_throughput(victim, [int(b) for b in args.batch_sizes.split(",")])
    best_batch = max(forward, key=forward.get)

    config = paper_config(pixels=args.pixels, mode=args.mode, population_size=args.popsize,
                          max_generations=args.max_gens, slots=args.slots, microbatch=args.microbatch)
    # Warm-up with the same shapes compiles everything the timed run needs.
    attack(victim, images[correct], labels[correct], config, image_indices=correct + 100_000)
    started = time.perf_counter()
    results = attack(victim, images[correct], labels[correct], config, image_indices=correct)
    wall = time.perf_counter() - started
    queries = results.summary["queries_this_run"]
    # The machine is shared and noisy: measure the limit again right after the attack
    # and use the mean of the two passes at each batch size.
    again = forward_throughput(victim, list(forward))
    forward = {size: (forward[size] + again[size]) / 2 for size in forward}
    best_batch = max(forward, key=forward.get)
    report = {
        "device": f"{jax.devices()[0].device_kind} ({platform.machine()}, {os.cpu_count()} cpus)",
        "model": args.model, "pixels": args.pixels, "mode": args.mode,
        "population_size": args.popsize, "max_generations": args.max_gens, "slots": args.slots,
        "microbatch": config.microbatch or "auto", "images": len(correct),
        "forward_img_per_s": {str(k): round(v, 1) for k, v in forward.items()},
        "forward_best_img_per_s": round(forward[best_batch], 1), "forward_best_batch": best_batch,
        "attack_queries": queries, "attack_wall_s": round(wall, 2),
        "attack_queries_per_s": round(queries / wall, 1),
        "ratio_to_forward": round(queries / wall / forward[best_batch], 3),
        "success_rate": results.summary["success_rate"],
        "queries_median": results.summary["queries_median"],
    }
    print(json.dumps(report))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as stream:
            stream.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
