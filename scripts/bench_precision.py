"""Does reduced-precision candidate scoring (AttackConfig.precision) change the attack's
outcome, and what does it cost? Same images, seed and budget under each precision.

  TFDS_DATA_DIR=../shared/tensorflow_datasets python scripts/bench_precision.py --model lenet --images 50 \\
      --out docs/results/bench_precision_cpu.jsonl
  TFDS_DATA_DIR=../shared/tensorflow_datasets python scripts/bench_precision.py --model resnet20 --images 16 \\
      --out docs/results/bench_precision_cpu.jsonl

Each precision attacks the first --images correctly classified CIFAR-10 test images
with the default attack (default_config) at --popsize x --max-gens, runs once to compile
and once timed on the identical problems (so the timed run compiles nothing). Every
verdict is float32 whatever the scoring, so "success" means the same thing in every
column. Appends one JSON line: the command, jax version, device, each precision's
success rate, queries and queries/s, and each precision's per-image agreement with the
first one (--precisions, fp32 by default): outcomes equal, queries equal, and the
problems only one of the two fooled.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np

from deattack import data
from deattack.attack import attack, default_config
from deattack.attack.config import PRECISIONS
from deattack.bench.timing import device_name
from deattack.victims.loading import load_victim
from deattack.victims.victim import correctly_classified


def _timed(victim, images, labels, indices, config) -> dict:
    """One precision's run: compiled untimed first, then timed on the identical problems."""
    started = time.perf_counter()
    attack(victim, images, labels, config, image_indices=indices)
    first = time.perf_counter() - started
    started = time.perf_counter()
    results = attack(victim, images, labels, config, image_indices=indices)
    wall = time.perf_counter() - started
    records = sorted(results.records, key=lambda r: r["image_index"])
    queries = int(results.summary["queries_this_run"])
    return {"first_run_s": round(first, 2), "wall_s": round(wall, 2), "queries": queries,
            "queries_per_s": round(queries / wall, 1),
            "success_rate": round(float(np.mean([r["success"] for r in records])), 4),
            "unverified": sum(r["status"] == "unverified" for r in records),
            "queries_mean": round(float(np.mean([r["queries"] for r in records])), 1),
            "queries_median": float(np.median([r["queries"] for r in records])),
            "_success": [bool(r["success"]) for r in records], "_queries": [int(r["queries"]) for r in records]}


def _agreement(reference: dict, other: dict) -> dict:
    """Per-image agreement of `other` with `reference` (same problems, same order)."""
    a, b = np.asarray(reference["_success"]), np.asarray(other["_success"])
    qa, qb = np.asarray(reference["_queries"]), np.asarray(other["_queries"])
    both = a & b
    return {"outcome_agreement": round(float(np.mean(a == b)), 4), "queries_equal": round(float(np.mean(qa == qb)), 4),
            "fooled_by_reference_only": int(np.sum(a & ~b)), "fooled_by_this_only": int(np.sum(b & ~a)),
            "both_fooled": int(np.sum(both)),
            "median_query_ratio_both_fooled": round(float(np.median(qb[both] / qa[both])), 3) if both.any() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--pixels", type=int, default=1)
    parser.add_argument("--popsize", type=int, default=100)
    parser.add_argument("--max-gens", dest="max_gens", type=int, default=20)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precisions", default="fp32,bf16", help=f"comma list of {', '.join(PRECISIONS)}; "
                        "the first is the reference")
    parser.add_argument("--out", help="append the JSON line to this file")
    args = parser.parse_args()
    precisions = [p for p in args.precisions.split(",") if p]
    victim = load_victim(args.model)
    images, labels = data.load_split("test")
    pool = np.arange(min(len(labels), 4 * args.images + 100))
    chosen = pool[correctly_classified(victim, images[pool], labels[pool])][: args.images]
    runs = {}
    for precision in precisions:
        config = default_config(args.pixels, population_size=args.popsize, max_generations=args.max_gens,
                                slots=args.slots, seed=args.seed, precision=precision)
        runs[precision] = _timed(victim, np.asarray(images[chosen], np.float32), labels[chosen], chosen, config)
    reference = runs[precisions[0]]
    report = {
        "command": "python scripts/bench_precision.py " + shlex.join(sys.argv[1:]),
        "jax": jax.__version__, "device": device_name(), "model": args.model, "images": int(len(chosen)),
        "pixels": args.pixels, "population_size": args.popsize, "max_generations": args.max_gens,
        "slots": args.slots, "seed": args.seed, "operator": f"{config.mutation}/{config.crossover}/{config.init}",
        "reference": precisions[0],
        "runs": {p: {k: v for k, v in run.items() if not k.startswith("_")} for p, run in runs.items()},
        "agreement_with_reference": {p: _agreement(reference, run) for p, run in runs.items() if run is not reference},
    }
    line = json.dumps(report)
    print(line, flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as stream:
            stream.write(line + "\n")


if __name__ == "__main__":
    main()
