"""`deattack eval` and `deattack attack`: a victim's test accuracy, and a few-pixel attack
on CIFAR-10 images written to a resumable results folder with a figure."""

from __future__ import annotations

import collections
import functools
import json
import sys
import time
from collections.abc import Callable, Sequence

from deattack import config_files, data
from deattack.attack import attack
from deattack.attack.config import OPERATOR_FIELDS, PRESETS, AttackConfig, default_config
from deattack.cli.common import ProgressBar, model_help
from deattack.datasets import load_dataset
from deattack.io_checks import check_output_dir, check_output_file
from deattack.overrides import apply_overrides, parse_value
from deattack.reports.figures import adversarial_grid
from deattack.reports.format import pixel_scale
from deattack.victims import loading
from deattack.victims.victim import check_image_shape, correctly_classified, num_classes


def victim_spec(args) -> str:
    """--model/--checkpoint, behind --defense when given ("median3" -> "median3+resnet20")."""
    name = args.checkpoint or args.model
    return f"{args.defense}+{name}" if getattr(args, "defense", None) else name


def _eval(args) -> int:
    victim = loading.load_victim(victim_spec(args))
    dataset = load_dataset(args.data, "test")
    images, labels = dataset.images, dataset.labels
    check_image_shape(victim, images.shape[1:])
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


def _class_targets(assignments: list[str], class_names: Callable[[], Sequence[str]]) -> list[str]:
    """"targets=horse" / "targets='7'" -> "targets=7": one target class by name or index
    (the dataset's class names); "all", "random" and anything else pass through."""
    resolved = []
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        target = parse_value(value.strip())
        if key.strip() == "targets" and isinstance(target, str):
            if target.isdigit():
                assignment = f"targets={int(target)}"
            elif target not in ("all", "random") and target in class_names():
                assignment = f"targets={list(class_names()).index(target)}"
        resolved.append(assignment)
    return resolved


def attack_config(args, class_names: Callable[[], Sequence[str]]):
    """--config FILE, else the library's default_config (the one default of attack()),
    with the flags and --set (which wins) applied on top."""
    flags = {
        "pixels": args.pixels, "mode": args.mode, "population_size": args.popsize,
        "max_generations": args.max_gens, "seed": args.seed, "slots": args.slots,
        "mutation": _OPERATOR_ALIASES.get(args.operator, args.operator) if args.operator else None,
        "crossover": args.crossover, "adaptation": args.adaptation, "fitness": args.fitness,
        "targets": args.targets, "devices": args.devices,
    }
    # --set comes after the flags: it wins.
    assignments = _class_targets([f"{key}={value!r}" for key, value in flags.items() if value is not None]
                                 + args.set, class_names)
    requested = _assigned(assignments)
    if args.config:
        config = config_files.load(args.config, AttackConfig)
    else:
        pixels = requested.get("pixels", 1)
        choosing = {k: requested[k] for k in ("search", *OPERATOR_FIELDS) if k in requested}
        config = default_config(pixels if isinstance(pixels, int) else 1,  # bad values: checked below
                                requested.get("mode", "untargeted"), preset=args.preset, **choosing)
    try:
        config = apply_overrides(config, assignments)
    except ValueError as error:
        if args.config or args.preset or "mutation" in choosing:
            raise
        # A limit of an operator the user never named: say where it came from.
        default = f"mutation {config.mutation!r}"
        raise ValueError(str(error).replace(default, f"{default} (the default operator; --operator or "
                                                     "--preset su2019 picks another)")) from None
    if "targets" in requested and config.mode != "targeted":
        raise ValueError(f"targets={requested['targets']!r} needs --mode targeted (the mode is {config.mode})")
    return config


def _attack(args) -> int:
    dataset = functools.cache(lambda: load_dataset(args.data, args.split))
    config = attack_config(args, lambda: dataset().class_names)
    if args.images < 1:
        raise ValueError(f"--images must be >= 1, got {args.images}")
    # Output locations are checked before the victim and the data load (deattack.io_checks).
    if args.out:
        check_output_dir(args.out, "--out folder")
    if args.figure not in (None, "none"):
        check_output_file(args.figure, "--figure file")
    images, labels, class_names = dataset().images, dataset().labels, dataset().class_names  # checked first
    victim = loading.load_victim(victim_spec(args))
    out = args.out or f"runs/attack-{victim.name}-{config.pixels}px-{config.mode}"
    if not args.out:
        check_output_dir(out, "default --out folder")
    chosen, correct = selected_images(args, dataset(), victim)
    attacked = chosen[correct]
    if not len(attacked):
        raise ValueError(f"none of the {len(chosen)} selected {args.split} images is classified correctly by "
                         f"{victim.name}: nothing to attack; choose other images (--start, --images, --indices, "
                         "--classes)")
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    say(f"{victim.name}: {correct.sum()} of {len(chosen)} selected {args.split} images are classified "
        f"correctly; attacking those ({len(chosen) - int(correct.sum())} skipped)")
    if config.mode == "targeted" and not isinstance(config.targets, str):
        _say_class_target(say, config.targets, labels[attacked], class_names)
    bar = ProgressBar("queries", rate_unit="q", scale=True)
    try:
        results = attack(victim, images[attacked], labels[attacked], config, image_indices=attacked, out=out,
                         run_info=folder_info(args, dataset()), on_progress=lambda progress: _show(bar, progress))
    finally:
        bar.close()
    summary = dict(results.summary, n_skipped_misclassified=int(len(chosen) - correct.sum()), out=out)
    if args.figure != "none":
        figure = args.figure or f"{out}/examples.png"
        # The folder may hold records of images an earlier call attacked and this one did not select.
        by_index = {int(r["image_index"]): images[int(r["image_index"])] for r in results.records}
        setting = {name: summary[name] for name in ("model", "pixels", "mode")}  # named in the figure's title
        summary["figure"] = str(adversarial_grid(results.records, by_index, class_names, figure, **setting))
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, results.records, class_names, images.shape[1:3])
    return 0


def selected_images(args, dataset, victim) -> tuple:
    """(indices chosen by --images/--start/--indices/--classes, which of them the victim
    classifies correctly); ValueError when none is chosen or shapes / labels do not fit."""
    images, labels = dataset.images, dataset.labels
    check_image_shape(victim, images.shape[1:])
    if args.indices:
        chosen = data.select(labels, indices=[int(i) for i in args.indices.split(",")])
    else:
        chosen = data.select(labels, start=args.start, stop=min(args.start + args.images, len(labels)),
                             classes=args.classes, num_classes=len(dataset.class_names))
    if not len(chosen):
        raise ValueError(f"no {args.split} image is selected (--start {args.start}, --images {args.images}, "
                         f"--classes {args.classes}): nothing to attack")
    classes = num_classes(victim, images.shape[1:])
    if labels[chosen].max() >= classes:
        raise ValueError(f"labels must be in [0, {classes}) (victim {victim.name} has {classes} classes); "
                         f"{args.data} has label {int(labels[chosen].max())}")
    return chosen, correctly_classified(victim, images[chosen], labels[chosen])


def _show(bar: ProgressBar, progress) -> None:
    """Queries spent of the most the problems may spend (failures spend their whole budget
    and finish last, so a count of finished problems stalls while the queries go on)."""
    bar.show(progress.queries, progress.queries_bound, progress.queries_per_s, progress.eta_s,
             f"{progress.problems_done}/{progress.problems_total} problems, {progress.successes} fooled")


def folder_info(args, dataset) -> dict:
    """What config.json records of the images (CIFAR-10 folders keep their earlier form)."""
    if dataset.name.startswith("cifar10:"):
        return {"split": dataset.name.partition(":")[2]}
    return {"data": dataset.name}


def _say_class_target(say, target: int, labels, names) -> None:
    """One target class for every image: those already of that class have nothing to do."""
    if target >= len(names):
        raise ValueError(f"targets={target} is not a class of the data (0..{len(names) - 1}: "
                         f"{', '.join(names[:20])})")
    same = int((labels == target).sum())
    if same == len(labels):
        raise ValueError(f"every selected image is of the target class {target} ({names[target]}): nothing to "
                         "attack; choose other images or another target")
    say(f"target class {target} ({names[target]}) for every image; {same} of them are of that class already "
        "(not attacked)")


def _print_summary(summary: dict, records: list[dict], class_names, image_size: tuple[int, int]) -> None:
    """The summary table, then up to 10 successes by class name."""
    resumed_only = summary["queries_this_run"] == 0 and summary["n_problems"] > 0
    if resumed_only:
        print(f"  all {summary['n_problems']} problems were already done in {summary['out']}; nothing attacked "
              "(the numbers are the stored records')")
    median_success = summary["queries_median_success"]
    rows = [
        ("model", summary["model"]),
        ("pixels / mode", f"{pixel_scale(summary['pixels'], *image_size)} / {summary['mode']}"),
        ("operator", f"{summary['mutation']} + {summary['crossover']} + {summary['adaptation']}"),
        ("population x generations", f"{summary['population_size']} x {summary['max_generations']}"),
        ("images attacked", summary["n_images"]), ("classes attacked", _classes_attacked(records, class_names)),
        ("problems", summary["n_problems"]),
        ("success", f"{summary['n_success']} / {summary['n_attacked']} = {summary['success_rate']:.1%}"),
        ("queries mean / median", f"{summary['queries_mean']:.0f} / {summary['queries_median']:.0f}"),
        ("median queries to success", "- (no success)" if median_success is None else median_success),
        ("wall time (s)", "-" if resumed_only else summary["wall_s"]),
        ("queries / s", "-" if resumed_only else summary["queries_per_s"]),
        ("results", summary["out"]), ("adversarial images", summary.get("adversarial", "-")),
        ("figure", summary.get("figure", "-")),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    for line in _success_lines(records, class_names):
        print(f"    {line}")


def _classes_attacked(records: list[dict], class_names) -> str:
    """"cat 3, ship 1": images attacked per true class, by the dataset's names."""
    labels = {int(r["image_index"]): int(r["true_label"]) for r in records}
    counts = collections.Counter(labels.values())
    return ", ".join(f"{class_names[label]} {count}" for label, count in sorted(counts.items())) or "-"


def _success_lines(records: list[dict], class_names, limit: int = 10) -> list[str]:
    """"image 7: cat (0.93) -> dog (0.61), 1 px at (12, 20)" for the first `limit` successes."""
    successes = sorted((r for r in records if r["success"]), key=lambda r: (r["image_index"], r["target"]))
    lines = [f"successes ({min(len(successes), limit)} of {len(successes)} listed; all in the adversarial "
             "images file):"] if successes else []
    for r in successes[:limit]:
        target = f", target {class_names[r['target']]}" if r["target"] >= 0 else ""
        where = " ".join(f"({x}, {y})" for x, y, *_ in r["pixels"][:3]) + (" ..." if len(r["pixels"]) > 3 else "")
        lines.append(f"image {r['image_index']}: {class_names[r['true_label']]} ({r['original_confidence']:.2f}) -> "
                     f"{class_names[r['adversarial_prediction']]} ({r['adversarial_confidence']:.2f}){target}, "
                     f"{len(r['pixels'])} px at {where}")
    if len(successes) > limit:
        lines.append(f"... and {len(successes) - limit} more")
    return lines


DATA_HELP = ("images to attack: cifar10[:SPLIT], FILE.npz (images uint8 [N, H, W, C], labels [N], optional "
             "class_names), FOLDER (one subfolder of images per class) or tfds:NAME[:SPLIT]")


def add_attack_flags(parser) -> None:
    """The victim, search and image flags `deattack attack` and `deattack robustness` share."""
    parser.add_argument("--model", default="resnet20", help=model_help())
    parser.add_argument("--checkpoint", help="checkpoint path (overrides --model)")
    parser.add_argument("--defense", help="attack end to end through a defense: median3, repair[:threshold=T] "
                                          "(same as --model DEFENSE+MODEL)")
    parser.add_argument("--config", help="configs/FILE.py[:variant] returning an AttackConfig")
    parser.add_argument("--preset", choices=PRESETS,
                        help="su2019: the paper's DE/rand/1 setting; without it the default config "
                             "(deattack.attack.default_config: the operator study's choice at the same budget)")
    parser.add_argument("--mode", choices=["untargeted", "targeted"],
                        help="untargeted: any wrong class; targeted: a chosen class (--targets) (default: "
                             "untargeted)")
    parser.add_argument("--targets", help="targeted: all (every other class, the paper's), random (one "
                                          "random other class an image) or one class for every image, by "
                                          "index or name (e.g. 7 or horse; images of it are skipped) (default: all)")
    parser.add_argument("--fitness", choices=["probability", "margin"],
                        help="what the search minimises: the class probability (the paper's) or the logit "
                             "margin (default: probability)")
    parser.add_argument("--operator", help="DE mutation, e.g. rand/1 (or rand1), current-to-pbest/1 (default: "
                                           "the default config's, printed in the summary)")
    parser.add_argument("--crossover", help="DE crossover: none, bin or exp (default: the default config's)")
    parser.add_argument("--adaptation", help="DE parameter adaptation: constant, jde, jade or shade (default: "
                                             "constant)")
    parser.add_argument("--popsize", type=int, help="population size P (default: 400, the paper's)")
    parser.add_argument("--max-gens", dest="max_gens", type=int,
                        help="generations at most; an image costs at most P x (generations + 1) queries "
                             "(default: 100, the paper's)")
    parser.add_argument("--seed", type=int, help="root of every problem's random stream (default: 0)")
    parser.add_argument("--slots", type=int, help="problems evolved together on the device (default: 8)")
    parser.add_argument("--devices", type=int, help="local devices to spread slots over, 0 = all (default: 0)")
    parser.add_argument("--data", default="cifar10", help=DATA_HELP)
    parser.add_argument("--split", default="test", help="split of cifar10 / tfds data to attack (test, train)")
    parser.add_argument("--images", type=int, default=100, help="the first N images from --start")
    parser.add_argument("--start", type=int, default=0, help="index of the first image")
    parser.add_argument("--indices", help="comma-separated image indices (overrides --images)")
    parser.add_argument("--classes", type=int, nargs="*", help="only images of these classes")


def add_attack_commands(commands) -> None:
    """`deattack eval` and `deattack attack`."""
    evaluate = commands.add_parser("eval", help="test accuracy of a victim checkpoint")
    evaluate.add_argument("--model", default="resnet20", help=model_help())
    evaluate.add_argument("--checkpoint", help="checkpoint path (overrides --model)")
    evaluate.add_argument("--defense", help="inference-time defense in front of it: median3, repair[:threshold=T]")
    evaluate.add_argument("--images", type=int, default=None, help="first N test images (default: all 10,000)")
    evaluate.add_argument("--data", default="cifar10", help=DATA_HELP)
    evaluate.add_argument("--json", action="store_true", help="print one JSON line on stdout")
    evaluate.set_defaults(run=_eval)

    attack = commands.add_parser("attack", help="few-pixel attack on CIFAR-10 images into a resumable results "
                                                "folder, with a figure of the adversarial examples")
    add_attack_flags(attack)
    attack.add_argument("--pixels", type=int, help="pixels changed per image, 1..1024 (default: 1)")
    attack.add_argument("--out", help="results folder (resumable; default runs/attack-...)")
    attack.add_argument("--figure", help="PNG of adversarial examples (default OUT/examples.png; 'none')")
    attack.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any AttackConfig field, e.g. --set confidence=0.5")
    attack.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    attack.set_defaults(run=_attack)
