"""`deattack eval` and `deattack attack`: a victim's test accuracy, and a few-pixel attack
on CIFAR-10 images written to a resumable results folder with a figure."""

from __future__ import annotations

import json
import sys
import time

from deattack import config_files, data
from deattack.attack import attack
from deattack.attack.config import OPERATOR_FIELDS, PRESETS, AttackConfig, default_config
from deattack.io_checks import check_output_dir, check_output_file
from deattack.overrides import apply_overrides, parse_value
from deattack.reports.figures import adversarial_grid
from deattack.victims import loading
from deattack.victims.victim import correctly_classified


def _victim_spec(args) -> str:
    """--model/--checkpoint, behind --defense when given ("median3" -> "median3+resnet20")."""
    name = args.checkpoint or args.model
    return f"{args.defense}+{name}" if getattr(args, "defense", None) else name


def _eval(args) -> int:
    victim = loading.load_victim(_victim_spec(args))
    images, labels = data.load_split("test")
    chosen = data.select(labels, start=0, stop=args.images)
    started = time.time()
    correct = correctly_classified(victim, images[chosen], labels[chosen])
    result = {
        "model": victim.name, "accuracy": float(correct.mean()), "n_images": int(len(chosen)),
        "params": victim.metadata.get("params"), "recorded_accuracy": victim.metadata.get("test_accuracy"),
        "wall_s": round(time.time() - started, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['model']}: test accuracy {result['accuracy']:.4f} on {result['n_images']} images "
              f"({result['params']} parameters)")
    return 0


_OPERATOR_ALIASES = {"rand1": "rand/1", "rand2": "rand/2", "best1": "best/1", "best2": "best/2",
                     "current-to-best1": "current-to-best/1", "current-to-pbest1": "current-to-pbest/1"}


def _assigned(assignments) -> dict:
    """{key: parsed value} of KEY=VALUE assignments, the last one of a key winning."""
    return {key.strip(): parse_value(value.strip()) for key, _, value in (a.partition("=") for a in assignments)}


def _attack_config(args):
    """--config FILE, else the library's default_config (the one default of attack()),
    with the flags and --set (which wins) applied on top."""
    flags = {
        "pixels": args.pixels, "mode": args.mode, "population_size": args.popsize,
        "max_generations": args.max_gens, "seed": args.seed, "slots": args.slots,
        "mutation": _OPERATOR_ALIASES.get(args.operator, args.operator) if args.operator else None,
        "crossover": args.crossover, "adaptation": args.adaptation, "fitness": args.fitness,
        "targets": args.targets, "devices": args.devices,
    }
    assignments = [f"{key}={value!r}" for key, value in flags.items() if value is not None]
    if args.config:
        config = config_files.load(args.config, AttackConfig)
    else:
        requested = _assigned([*assignments, *args.set])  # --set wins over flags
        pixels = requested.get("pixels", 1)
        choosing = {k: requested[k] for k in ("search", *OPERATOR_FIELDS) if k in requested}
        config = default_config(pixels if isinstance(pixels, int) else 1,  # bad values: checked below
                                requested.get("mode", "untargeted"), preset=args.preset, **choosing)
    try:
        return apply_overrides(config, [*assignments, *args.set])
    except ValueError as error:
        if args.config or args.preset or "mutation" in choosing:
            raise
        # A limit of an operator the user never named: say where it came from.
        default = f"mutation {config.mutation!r}"
        raise ValueError(str(error).replace(default, f"{default} (the default operator; --operator or "
                                                     "--preset su2019 picks another)")) from None


def _attack(args) -> int:
    from tqdm import tqdm

    config = _attack_config(args)
    if args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    # Output locations are checked before the victim and the data load (deattack.io_checks).
    if args.out:
        check_output_dir(args.out, "--out folder")
    if args.figure not in (None, "none"):
        check_output_file(args.figure, "--figure file")
    victim = loading.load_victim(_victim_spec(args))
    out = args.out or f"runs/attack-{victim.name}-{config.pixels}px-{config.mode}"
    if not args.out:
        check_output_dir(out, "default --out folder")
    images, labels = data.load_split(args.split)
    if args.indices:
        chosen = data.select(labels, indices=[int(i) for i in args.indices.split(",")])
    else:
        chosen = data.select(labels, start=args.start, stop=min(args.start + args.images, len(labels)),
                             classes=args.classes)
    if not len(chosen):
        raise ValueError(f"no {args.split} image is selected (--start {args.start}, --images {args.images}, "
                         f"--classes {args.classes}): nothing to attack")
    correct = correctly_classified(victim, images[chosen], labels[chosen])
    attacked = chosen[correct]
    if not len(attacked):
        raise ValueError(f"none of the {len(chosen)} selected {args.split} images is classified correctly by "
                         f"{victim.name}: nothing to attack; choose other images (--start, --images, --indices, "
                         "--classes)")
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f"{victim.name}: {correct.sum()} of {len(chosen)} selected {args.split} images are classified "
        f"correctly; attacking those ({len(chosen) - int(correct.sum())} skipped)")
    bar = tqdm(total=None, unit="problem", file=sys.stderr, dynamic_ncols=True,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)

    def on_progress(progress):
        if bar.total is None:
            bar.reset(total=progress.problems_total)
        bar.n = progress.problems_done
        bar.set_postfix(success=progress.successes, q_per_s=f"{progress.queries_per_s:.0f}", refresh=True)

    results = attack(victim, images[attacked], labels[attacked], config, image_indices=attacked,
                     out=out, run_info={"split": args.split}, on_progress=on_progress)
    bar.close()
    summary = dict(results.summary, n_skipped_misclassified=int(len(chosen) - correct.sum()), out=out)
    if args.figure != "none":
        figure = args.figure or f"{out}/examples.png"
        # The folder may hold records of images an earlier call attacked and this one did not select.
        by_index = {int(r["image_index"]): images[int(r["image_index"])] for r in results.records}
        summary["figure"] = str(adversarial_grid(results.records, by_index, data.class_names(), figure))
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    resumed_only = summary["queries_this_run"] == 0 and summary["n_problems"] > 0
    if resumed_only:
        print(f"  all {summary['n_problems']} problems were already done in {summary['out']}; nothing attacked "
              "(the numbers are the stored records')")
    median_success = summary["queries_median_success"]
    rows = [
        ("model", summary["model"]), ("pixels / mode", f"{summary['pixels']} / {summary['mode']}"),
        ("operator", f"{summary['mutation']} + {summary['crossover']} + {summary['adaptation']}"),
        ("population x generations", f"{summary['population_size']} x {summary['max_generations']}"),
        ("images attacked", summary["n_images"]), ("problems", summary["n_problems"]),
        ("success", f"{summary['n_success']} / {summary['n_attacked']} = {summary['success_rate']:.1%}"),
        ("queries mean / median", f"{summary['queries_mean']:.0f} / {summary['queries_median']:.0f}"),
        ("median queries to success", "- (no success)" if median_success is None else median_success),
        ("wall time (s)", "-" if resumed_only else summary["wall_s"]),
        ("queries / s", "-" if resumed_only else summary["queries_per_s"]),
        ("results", summary["out"]), ("figure", summary.get("figure", "-")),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")


def add_attack_commands(commands) -> None:
    """`deattack eval` and `deattack attack`."""
    evaluate = commands.add_parser("eval", help="test accuracy of a victim checkpoint")
    evaluate.add_argument("--model", default="resnet20", help="shipped victim name")
    evaluate.add_argument("--checkpoint", help="checkpoint path (overrides --model)")
    evaluate.add_argument("--defense", help="inference-time defense in front of it: median3, repair[:threshold=T]")
    evaluate.add_argument("--images", type=int, default=None, help="first N test images (default all)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=_eval)

    attack = commands.add_parser("attack", help="few-pixel DE attack on CIFAR-10 test images")
    attack.add_argument("--model", default="resnet20", help="shipped victim name")
    attack.add_argument("--checkpoint", help="checkpoint path (overrides --model)")
    attack.add_argument("--defense", help="attack end to end through a defense: median3, repair[:threshold=T] "
                                          "(same as --model DEFENSE+MODEL)")
    attack.add_argument("--config", help="configs/FILE.py[:variant] returning an AttackConfig")
    attack.add_argument("--preset", choices=PRESETS,
                        help="su2019: the paper's DE/rand/1 setting (default: deattack.attack.default_config, "
                             "the operator study's choice at the same budget)")
    attack.add_argument("--pixels", type=int)
    attack.add_argument("--mode", choices=["untargeted", "targeted"])
    attack.add_argument("--targets", choices=["all", "random"], help="targeted: all 9 or one random")
    attack.add_argument("--fitness", choices=["probability", "margin"])
    attack.add_argument("--operator", help="mutation, e.g. rand/1 (or rand1), current-to-pbest/1")
    attack.add_argument("--crossover", help="none, bin or exp")
    attack.add_argument("--adaptation", help="constant, jde, jade or shade")
    attack.add_argument("--popsize", type=int)
    attack.add_argument("--max-gens", dest="max_gens", type=int)
    attack.add_argument("--seed", type=int)
    attack.add_argument("--slots", type=int, help="problems evolved together on the device")
    attack.add_argument("--devices", type=int, help="local devices to spread slots over (0 = all)")
    attack.add_argument("--split", default="test", choices=["test", "train"])
    attack.add_argument("--images", type=int, default=100, help="the first N images from --start")
    attack.add_argument("--start", type=int, default=0)
    attack.add_argument("--indices", help="comma-separated image indices (overrides --images)")
    attack.add_argument("--classes", type=int, nargs="*", help="only images of these classes")
    attack.add_argument("--out", help="results folder (resumable; default runs/attack-...)")
    attack.add_argument("--figure", help="PNG of adversarial examples (default OUT/examples.png; 'none')")
    attack.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any AttackConfig field, e.g. --set confidence=0.5")
    attack.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    attack.set_defaults(run=_attack)
