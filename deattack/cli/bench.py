"""`deattack bench`: attack queries/s against the raw forward limit, against peers
(scipy, torchattacks, ART) at equal budget on the same weights and images, and
optionally scaling and memory. A thin wrapper over deattack.bench.

  deattack bench --quick --json                     # minutes on 2 CPU cores
  deattack bench --model resnet20 --images 30 --max-gens 100 --json   # the paper's budget
  deattack bench --quick --peers none --scaling-slots 1,8,64 --scaling-popsizes 100,400 --memory

Peers: "auto" runs scipy always and torchattacks / ART where the [bench] extra is
installed; torch is imported only then.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from deattack import data
from deattack.attack import paper_config
from deattack.attack.targets import random_targets
from deattack.bench import throughput as bench
from deattack.bench.peers import PEER_MODULES, available
from deattack.cli.common import model_help
from deattack.victims import loading
from deattack.victims.victim import correctly_classified, num_classes

QUICK = {"images": 4, "max_gens": 4, "batch_sizes": [32, 64, 128, 256]}
FULL_BATCH_SIZES = [32, 64, 128, 256, 512, 1024, 2048]
MEMORY_BATCH_SIZES = [32, 128, 512, 2048, 8192, 32768, 65536]
PORT_CHECK_IMAGES = 100  # the port must match the JAX victim to 1e-4 on this many test images


def _int_list(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None


def resolve_peers(spec: str) -> list[str]:
    """"auto" -> every peer importable here; "none" -> []; else a comma list, each checked.

    Raises:
      ValueError: an unknown peer, or one whose packages are missing (install `.[bench]`).
    """

    present = available()
    if spec == "auto":
        return [name for name in PEER_MODULES if present[name]]
    if spec == "none":
        return []
    chosen = [name.strip() for name in spec.split(",") if name.strip()]
    for name in chosen:
        if name not in PEER_MODULES:
            raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEER_MODULES)}, auto, none")
        if not present[name]:
            raise ValueError(f"peer {name!r} needs {', '.join(PEER_MODULES[name])}: pip install -e '.[bench]'")
    return chosen


def bench_report(args) -> dict:
    """The benchmark's JSON object for parsed `deattack bench` arguments."""
    import numpy as np

    count = QUICK["images"] if args.quick else args.images
    generations = QUICK["max_gens"] if args.quick else args.max_gens
    sizes = _int_list(args.batch_sizes) or (QUICK["batch_sizes"] if args.quick else FULL_BATCH_SIZES)
    scaling_slots, scaling_populations = _int_list(args.scaling_slots), _int_list(args.scaling_popsizes)
    peers = resolve_peers(args.peers)
    if count < 1:
        raise ValueError(f"--images must be >= 1, got {count}")
    victim = loading.load_victim(args.checkpoint or args.model)
    images, labels = data.load_split("test")
    # Scaling runs attack as many images as they have slots (population runs: --slots).
    needed = max([count, *scaling_slots, *([args.slots] if scaling_populations else [])])
    pool = np.arange(min(len(labels), max(300, 2 * needed)))
    correct = pool[correctly_classified(victim, images[pool], labels[pool])]
    if len(correct) < needed:
        raise ValueError(f"only {len(correct)} of the first {len(pool)} test images are classified correctly; "
                         f"{needed} needed")
    chosen = correct[:count]
    config = paper_config(pixels=args.pixels, mode=args.mode, slots=args.slots, max_generations=generations,
                          population_size=args.popsize, seed=args.seed, microbatch=args.microbatch,
                          forward=args.forward)
    targets = None
    if args.mode == "targeted":
        targets = random_targets(args.seed, chosen, labels[chosen], num_classes(victim))
    port_images = images[:PORT_CHECK_IMAGES]
    report = bench.attack_vs_forward(victim, images[chosen], labels[chosen], chosen, config, sizes,
                                     peers=peers, targets=targets, port_images=port_images,
                                     forward_seconds=args.forward_seconds, peer_images=args.peer_images,
                                     profile_dir=args.profile)
    report["peers"] = peers
    report["quick"] = bool(args.quick)
    if args.quick:
        report["quick_note"] = (f"{count} images, {generations} generations (paper: 100): "
                                "side-by-side ratios, not the paper-budget numbers")
    if scaling_slots or scaling_populations:
        scaled = images[correct[:needed]], labels[correct[:needed]]
        scaling_config = dataclasses.replace(config, max_generations=args.scaling_gens)
        report["scaling"] = bench.scaling(victim, *scaled, scaling_config,
                                          slots=scaling_slots, populations=scaling_populations)
    if args.memory:
        sizes = _int_list(args.memory_batch_sizes) or MEMORY_BATCH_SIZES
        report["memory"] = bench.forward_memory_scan(victim, sizes)
    return report


def _bench(args) -> int:
    report = bench_report(args)
    report["command"] = "deattack bench " + " ".join(getattr(args, "argv", None) or sys.argv[2:])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as stream:
            stream.write(json.dumps(report) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"  {key}: {value}")
    return 0


def add_bench_command(commands) -> None:
    """Registers `deattack bench` on deattack.cli's subparsers."""
    bench = commands.add_parser("bench", help="attack queries/s against the forward limit and against peers")
    bench.add_argument("--model", default="resnet20", help=model_help())
    bench.add_argument("--checkpoint", help="checkpoint path (overrides --model)")
    bench.add_argument("--pixels", type=int, default=1, help="pixels changed per image")
    bench.add_argument("--mode", default="untargeted", choices=["untargeted", "targeted"], help="attack mode")
    bench.add_argument("--images", type=int, default=8, help="CIFAR-10 test images attacked in the timed run")
    bench.add_argument("--max-gens", dest="max_gens", type=int, default=10, help="generations of the timed run")
    bench.add_argument("--popsize", type=int, default=400, help="P (ART's PixelAttack always uses 400)")
    bench.add_argument("--slots", type=int, default=4, help="problems evolved together on the device")
    bench.add_argument("--seed", type=int, default=0, help="root of every problem's random stream")
    bench.add_argument("--microbatch", type=int, default=0,
                       help="candidate images per forward call "
                            "(0: automatic, deattack.attack.fitness.default_microbatch)")
    bench.add_argument("--forward", default="full", choices=["full", "incremental"],
                       help="how deattack scores candidates (deattack.attack.incremental); the limit "
                            "it is compared with is always the victim's full forward")
    bench.add_argument("--quick", action="store_true",
                       help=f"{QUICK['images']} images, {QUICK['max_gens']} generations, small batch scan")
    bench.add_argument("--peers", default="auto",
                       help="auto (scipy + what the [bench] extra provides), none, or e.g. scipy,torchattacks,art")
    bench.add_argument("--peer-images", dest="peer_images", type=int,
                       help="run the peers on the first N images only (default: all; on a GPU deattack attacks "
                            "hundreds at once, the peers one by one)")
    bench.add_argument("--batch-sizes", dest="batch_sizes", help="forward scan, e.g. 32,64,128")
    bench.add_argument("--forward-seconds", dest="forward_seconds", type=float, default=2.0,
                       help="timing per batch size of the forward scan (before and after the attacks)")
    bench.add_argument("--scaling-slots", dest="scaling_slots", help="images in flight to scan, e.g. 1,8,64,256")
    bench.add_argument("--scaling-popsizes", dest="scaling_popsizes", help="populations to scan, e.g. 100,200,400,800")
    bench.add_argument("--scaling-gens", dest="scaling_gens", type=int, default=5,
                       help="generations per scaling run (each runs to this budget)")
    bench.add_argument("--memory", action="store_true",
                       help="forward images/s and peak memory up to the largest batch that fits")
    bench.add_argument("--memory-batch-sizes", dest="memory_batch_sizes", help=f"default {MEMORY_BATCH_SIZES}")
    bench.add_argument("--profile", metavar="DIR", help="write a jax.profiler trace of the timed attack to DIR")
    bench.add_argument("--out", help="append the JSON object to this file")
    bench.add_argument("--json", action="store_true", help="print the JSON object on stdout")
    bench.set_defaults(run=_bench)
