"""`deattack defenses CONFIG`: evaluate defended victims against their twins, then write
the report. A thin wrapper over deattack.defenses.evaluate and .report; progress bars
and printing live here only.

  deattack defenses configs/defenses.py:smoke --out runs/defenses/smoke
  deattack defenses configs/defenses.py --out runs/defenses/resnet20 --report docs/results/defenses.md
  deattack defenses configs/defenses.py --out runs/defenses/resnet20 --report docs/results/defenses.md --report-only
  deattack defenses configs/defenses.py:resnet20_trained --out DIR --shard 4/12   # one adaptive cell (of 12)
  deattack defenses configs/defenses.py:resnet20_wrappers --out W --reuse DIR --reuse-only   # twin cells from DIR
  deattack defenses configs/defenses.py:resnet20_wrappers --out W --only aware --shard 2/6   # one repair-aware cell
"""

from __future__ import annotations

import json
from pathlib import Path

from deattack.cli.common import ProgressBar, command_line, load_config, read_note, show_sweep_progress
from deattack.defenses.evaluate import DefenseEvalConfig, run_defenses
from deattack.defenses.report import write_report


def _defenses(args) -> int:
    path_text, _, variant = args.config.partition(":")
    out = Path(args.out or f"runs/defenses/{Path(path_text).stem}{'-' + variant if variant else ''}")
    command = command_line(args)
    note = read_note(args.note)  # before any work: a missing note file is a bad input
    if not args.report_only:
        config = load_config(args.config, DefenseEvalConfig, args.set)
        bars: dict[str, ProgressBar] = {}

        def on_progress(kind, progress):
            if kind not in bars:  # the sweeps run one after another: the last one is done
                for bar in bars.values():
                    bar.close()
                bars[kind] = ProgressBar("img", desc=kind)
            show_sweep_progress(bars[kind], progress)

        try:
            run_defenses(config, out, on_progress=on_progress, command=command, shard=args.shard,
                         reuse=args.reuse, reuse_only=args.reuse_only, only=tuple(args.only))
        finally:
            for bar in bars.values():
                bar.close()
    report = write_report(out, args.report or out / "defenses.md", command=command,
                          figures=not args.no_figures, also=tuple(args.also), note=note)
    if args.json:
        print(json.dumps({"out": str(out), "files": report["files"], "verdicts": report["verdicts"]}))
    else:
        for verdict in report["verdicts"] + [v for run in report["also"] for v in run["verdicts"]]:
            cost = verdict["accuracy_cost"]
            scale = f" ({verdict['scale']})" if "scale" in verdict else ""
            print(f"{verdict['defended']}{scale} vs {verdict['twin']}: accuracy cost "
                  f"{'-' if cost is None else f'{100 * cost:+.1f} pp'}, {verdict['verdict']}")
        print(f"report: {report['files']['markdown']}")
    return 0


def add_defense_commands(subparsers) -> None:
    """Registers `defenses` on an argparse subparsers object."""
    parser = subparsers.add_parser("defenses", help="defended victims vs undefended twins: accuracy, attack "
                                                    "success (default and adaptive), report")
    parser.add_argument("config", help="configs/defenses.py[:variant] returning a DefenseEvalConfig")
    parser.add_argument("--out", help="run folder (resumable; default runs/defenses/CONFIG[-variant])")
    parser.add_argument("--report", help="markdown report path (default OUT/defenses.md)")
    parser.add_argument("--report-only", dest="report_only", action="store_true",
                        help="only rewrite the report from the run folder")
    parser.add_argument("--no-figures", dest="no_figures", action="store_true", help="tables only, no PNGs")
    parser.add_argument("--note", metavar="FILE", help="markdown conclusion to print in the report (it lives in "
                                                       "docs/results, written after reading the numbers)")
    parser.add_argument("--reuse", action="append", default=[], metavar="RUN_DIR",
                        help="copy finished units of the same cells (same victim, attack, images) from "
                             "another run folder's stores instead of running them; repeatable")
    parser.add_argument("--reuse-only", dest="reuse_only", action="store_true",
                        help="with --reuse: copy, run nothing, then the transfer attack on what is there")
    parser.add_argument("--also", action="append", default=[], metavar="RUN_DIR",
                        help="another run folder whose verdicts and success rows join the report's tables, "
                             "marked with their image set (repeatable; e.g. the wrappers' folder)")
    parser.add_argument("--shard", default="0/1",
                        help="i/n: run only unit u with u mod n == i of each sweep, into the same --out "
                             "(one cell of a large evaluation, or n jobs side by side)")
    parser.add_argument("--only", action="append", default=[], metavar="SWEEP",
                        help="run only this sweep: default, adaptive or aware (repeatable; --shard then "
                             "counts its units), e.g. the aware sweep of a folder whose others ran")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set images.count=20 --set pixels=1,3")
    parser.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    parser.set_defaults(run=_defenses)
