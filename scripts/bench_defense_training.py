"""Cost of training-time defenses per train step: plain (crop, flip) vs + dead pixels vs
+ DE adversarial training (the attack runs inside the jitted train step).

  python scripts/bench_defense_training.py --model lenet --steps 5 --out docs/results/bench_defense_training.jsonl

Interleaves the configurations step by step (A B C A B C ...) so load on a shared
machine hits them alike; reports the median step time of each (first call, which
compiles, timed apart) and the ratio to plain training, in wall time and in process
CPU time (all threads; robust to other jobs on a shared machine). One JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--de-attack", default="de_attack:fraction=0.25,generations=5,pixels=1,popsize=20")
    parser.add_argument("--dead-pixels", default="dead_pixels:k=1-5,p=0.5,values=mixed")
    parser.add_argument("--out", help="append the JSON line to this file")
    args = parser.parse_args()

    from deattack import data
    from deattack.models import get_model
    from deattack.training import train

    images, labels = data.load_split("train")
    images, labels = jax.numpy.asarray(images[:4096]), jax.numpy.asarray(labels[:4096])
    variants = {"plain": ("crop", "flip"), "dead_pixels": ("crop", "flip", args.dead_pixels),
                "de_attack": ("crop", "flip", args.de_attack)}
    model = get_model(args.model)
    steps, states, compile_s, times = {}, {}, {}, {name: [] for name in variants}
    cpu_times = {name: [] for name in variants}
    for name, augmentations in variants.items():
        config = train.TrainConfig(model=args.model, epochs=1, batch_size=args.batch_size,
                                   augmentations=augmentations)
        optimizer = train.make_optimizer(config, steps_per_epoch=100)
        steps[name] = train.make_train_step(config, model, optimizer)
        states[name] = train.init_state(config, model, optimizer)
        started = time.perf_counter()
        states[name], metrics = steps[name](states[name], images, labels, np.arange(args.batch_size))
        jax.block_until_ready(metrics)
        compile_s[name] = round(time.perf_counter() - started, 2)
    rng = np.random.default_rng(0)
    for _ in range(args.steps):
        batch = rng.choice(len(labels), args.batch_size, replace=False)
        for name in variants:
            started, cpu_started = time.perf_counter(), time.process_time()
            states[name], metrics = steps[name](states[name], images, labels, batch)
            jax.block_until_ready(metrics)
            times[name].append(time.perf_counter() - started)
            cpu_times[name].append(time.process_time() - cpu_started)
    median = {name: float(np.median(t)) for name, t in times.items()}
    cpu_median = {name: float(np.median(t)) for name, t in cpu_times.items()}
    report = {
        "device": f"{jax.devices()[0].device_kind} ({platform.machine()}, {jax.device_count()} device)",
        "model": args.model, "batch_size": args.batch_size, "steps": args.steps,
        "augmentations": {name: list(a) for name, a in variants.items()},
        "first_call_s": compile_s, "step_ms_median": {k: round(1000 * v, 1) for k, v in median.items()},
        "step_ms_all": {k: [round(1000 * x, 1) for x in v] for k, v in times.items()},
        "ratio_to_plain": {k: round(v / median["plain"], 2) for k, v in median.items()},
        "step_cpu_ms_median": {k: round(1000 * v, 1) for k, v in cpu_median.items()},
        "cpu_ratio_to_plain": {k: round(v / cpu_median["plain"], 2) for k, v in cpu_median.items()},
    }
    line = json.dumps(report)
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as stream:
            stream.write(line + "\n")


if __name__ == "__main__":
    main()
