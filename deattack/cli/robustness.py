"""`deattack robustness`: robust accuracy against the number of pixels (the standard L0
evaluation) for one victim and one attack, as a table and a figure."""

from __future__ import annotations

import argparse
import functools
import json
import sys

from deattack.attack.robustness import check_ks, robust_accuracy
from deattack.cli.attack import add_attack_flags, attack_config, folder_info, selected_images, victim_spec
from deattack.cli.common import command_line
from deattack.datasets import load_dataset
from deattack.io_checks import check_output_dir
from deattack.reports.robustness import robustness_table, write_robustness
from deattack.victims import loading


def _ks(text: str) -> tuple[int, ...]:
    try:
        return check_ks([int(k) for k in text.split(",")])
    except ValueError as error:
        raise ValueError(f"--ks {text}: {error}") from None


def _robustness(args) -> int:
    ks = _ks(args.ks)
    dataset = functools.cache(lambda: load_dataset(args.data, args.split))

    def config_for(k: int):
        return attack_config(argparse.Namespace(**{**vars(args), "pixels": k}), lambda: dataset().class_names)

    config_for(ks[0]), config_for(ks[-1])  # bad settings fail before any work
    images, labels = dataset().images, dataset().labels
    victim = loading.load_victim(victim_spec(args))
    out = args.out or f"runs/robustness-{victim.name}-{config_for(ks[0]).mode}"
    check_output_dir(out, "--out folder")
    chosen, _ = selected_images(args, dataset(), victim)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    result = robust_accuracy(victim, images[chosen], labels[chosen], config_for, ks, image_indices=chosen,
                             out=out, run_info=folder_info(args, dataset()),
                             on_k=lambda k, count: say(f"k = {k}: attacking {count} images"))
    summary = result.summary()
    first = config_for(ks[0])
    title = f"{victim.name}, {first.mode}, {first.search} ({first.max_queries:,} queries an image and k)"
    files = write_robustness(summary, out, title, command=command_line(args), figure=not args.no_figures)
    if args.json:
        print(json.dumps({**summary, "files": files}))
    else:
        print(robustness_table(summary))
        print(f"files: {', '.join(files.values())}")
    return 0


def add_robustness_command(commands) -> None:
    """`deattack robustness`."""
    parser = commands.add_parser("robustness", help="robust accuracy against the number of pixels k (anytime L0: "
                                                    "an image fooled at k is not attacked at larger k)")
    add_attack_flags(parser)
    parser.add_argument("--ks", default="1,2,3,5,10,20", help="pixel counts k, increasing")
    parser.add_argument("--out", help="folder: robustness.md / .json, robust_accuracy.png and one resumable "
                                      "results folder a k (default runs/robustness-MODEL-MODE)")
    parser.add_argument("--no-figures", dest="no_figures", action="store_true", help="tables only, no PNG")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any AttackConfig field, e.g. --set search=sparse-rs")
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    parser.set_defaults(run=_robustness)
