"""Sparse-RS queries/s on one victim, for the layouts of its candidates (CPU or device).

  TFDS_DATA_DIR=../shared/tensorflow_datasets python scripts/bench_sparse_rs.py --model lenet --images 8

Options timed, each at the same per-problem budget (--queries) and slots (--slots):
  p1-mb1:   population_size=1 (the reference), the CPU default microbatch (1: one image a
            forward call; bit-identical results whatever the layout);
  p1-mbS:   population_size=1, microbatch=slots (every slot's candidate in one forward call);
  pN:       population_size=N proposals an iteration (default microbatch, a divisor of N).
Each option runs once to compile, then --repeats times on the same images; the fastest
run is reported (the machine may be shared). Prints one JSON line per option: queries
charged, wall seconds, queries/s, successes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from deattack import data
from deattack.attack import AttackConfig, attack
from deattack.victims.loading import load_victim
from deattack.victims.victim import predict


def _options(slots: int, populations: list[int]) -> dict[str, dict]:
    options = {"p1-mb1": {"population_size": 1}, f"p1-mb{slots}": {"population_size": 1, "microbatch": slots}}
    options.update({f"p{p}": {"population_size": p} for p in populations})
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--pixels", type=int, default=1)
    parser.add_argument("--queries", type=int, default=2000, help="budget a problem")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--populations", type=int, nargs="*", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=200, help="iterations a jitted call (chunk_generations)")
    args = parser.parse_args()
    victim = load_victim(args.model)
    images, labels = data.load_split("test")
    images, labels = np.asarray(images[:200], np.float32), np.asarray(labels[:200])
    correct = np.flatnonzero(np.argmax(predict(victim, images), axis=-1) == labels)[: args.images]
    base = AttackConfig(search="sparse-rs", pixels=args.pixels, fitness="margin", slots=args.slots,
                        chunk_generations=args.chunk)
    for name, fields in _options(args.slots, args.populations).items():
        population = fields["population_size"]
        config = dataclasses.replace(base, max_generations=args.queries // population - 1, **fields)
        attack(victim, images[correct], labels[correct], config, image_indices=correct)  # compiles
        wall = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            results = attack(victim, images[correct], labels[correct], config, image_indices=correct)
            wall = min(wall, time.perf_counter() - started)
        queries = int(results.summary["queries_this_run"])
        print(json.dumps({"option": name, "model": args.model, "problems": len(correct), "slots": args.slots,
                          "population_size": population, "microbatch": config.microbatch,
                          "budget": config.max_queries, "chunk_generations": args.chunk, "queries": queries,
                          "wall_s": round(wall, 2),
                          "queries_per_s": round(queries / wall, 1),
                          "successes": int(sum(r["success"] for r in results.records))}), flush=True)


if __name__ == "__main__":
    main()
