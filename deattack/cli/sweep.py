"""`deattack sweep | merge | report | export`: thin wrappers over deattack.sweep,
deattack.sweep.store and deattack.reports. Progress bars and printing live here only.

  deattack sweep configs/keras_table.py --shard 0/4 --store runs/keras-0.sqlite
  deattack sweep configs/operators.py:followup-resnet20 --store S --plan   # units and their state
  deattack sweep configs/operators.py:followup-resnet20 --store S --units 48-50
  deattack sweep configs/operators.py:followup-lenet --reuse runs/sweep/operators-screen.sqlite
  deattack merge runs/keras.sqlite runs/keras-0.sqlite runs/keras-1.sqlite ...
  deattack report runs/keras.sqlite --out reports/keras
  deattack export runs/keras.sqlite --out runs/keras.csv

`add_sweep_commands(subparsers)` registers them on deattack.cli.main's parser.
"""

from __future__ import annotations

import json
from pathlib import Path

from deattack.cli.common import ProgressBar, command_line, load_config, read_note, show_sweep_progress
from deattack.reports.operator_report import build_operator_report
from deattack.reports.robustness import write_comparison
from deattack.reports.sweep_report import build_report
from deattack.sweep.grid import SweepConfig, format_units, parse_shard, parse_units
from deattack.sweep.merge import export, merge
from deattack.sweep.run import default_store_path, plan, run_sweep


def _print_plan(rows: list[dict], store: str, as_json: bool) -> None:
    """One line a unit: number, state, cell, chunk, images; then the counts."""

    if as_json:
        print(json.dumps({"store": store, "units": rows}))
        return
    for row in rows:
        state = row["state"]
        if state == "done":
            state = f"done ({row['rows']} rows, {row['wall_s']:.0f} s)"
        elif state == "partial":
            state = f"partial ({row['problems_saved']} problems saved)"
        start, stop = row["images"]
        print(f"{row['unit']:>5}  cell {row['cell']:>3} chunk {row['chunk']:>2}  images [{start}, {stop})  "
              f"{row['describe']}  {state}")
    counts = {state: sum(row["state"] == state for row in rows) for state in ("done", "partial", "pending")}
    waiting = [row["unit"] for row in rows if row["state"] != "done"]

    print(f"{len(rows)} units in {store}: {counts['done']} done, {counts['partial']} partial, "
          f"{counts['pending']} pending" + (f"; run the rest with --units {format_units(waiting)}" if waiting else ""))


def _sweep(args) -> int:
    shard = parse_shard(args.shard)
    units = parse_units(args.units)
    config = load_config(args.config, SweepConfig, args.set)
    store = args.store or str(default_store_path(args.config, shard))
    if args.plan:
        _print_plan(plan(config, store), store, args.json)
        return 0
    bar = ProgressBar("img")
    try:
        summary = run_sweep(config, store, shard=shard, units=units, log_path=args.log,
                            on_progress=lambda progress: show_sweep_progress(bar, progress),
                            command=command_line(args), reuse=args.reuse, reuse_only=args.reuse_only)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"sweep {config.name} shard {shard[0]}/{shard[1]}: {summary['units_run']} units run, "
              f"{summary['units_resumed']} already done, {summary['units_reused']} reused"
              f"{', %d left pending' % summary['units_pending'] if summary['units_pending'] else ''}; "
              f"{summary['rows_in_store']} rows in {summary['store']} "
              f"({summary['cells_done']}/{summary['cells_total']} cells done, {summary['wall_s']:.1f} s; "
              f"log {summary['log']})")
    return 0


def _merge(args) -> int:
    counts = merge(args.out, args.inputs, command=command_line(args))
    print(json.dumps({"out": args.out, **counts}) if args.json else
          f"merged {len(args.inputs)} stores into {args.out}: {counts['cells']} cells, "
          f"{counts['units']} units, {counts['results']} result rows")
    return 0


def _report(args) -> int:
    if args.robustness:  # `deattack robustness` folders on the same images, NAME=FOLDER or FOLDER
        folders = dict((a.partition("=")[0], a.partition("=")[2]) if "=" in a else (Path(a).name, a)
                       for a in args.store)
        files = write_comparison(folders, args.out, command=command_line(args), figure=not args.no_figures)
        print(json.dumps(files) if args.json else f"robustness comparison in {args.out}: {', '.join(files)}")
        return 0
    if args.operators:  # the operator study (issue 7): one report over several stores
        note = read_note(args.note)
        result = build_operator_report(args.store, args.out, command=command_line(args),
                                       figures=not args.no_figures, note=note, baseline=args.baseline)
        print(json.dumps(result["files"]) if args.json else
              f"operator report of {len(args.store)} store(s) in {args.out}: " + ", ".join(sorted(result["files"])))
        return 0
    if len(args.store) > 1:
        raise ValueError("several stores make one report only with --operators; merge them first "
                         "(deattack merge OUT STORES...)")
    args.store = args.store[0]
    result = build_report(args.store, args.out, command=command_line(args), figures=not args.no_figures)
    if args.json:
        print(json.dumps(result["files"]))
    else:
        print(f"report of {result['store']} ({result['n_cells_complete']}/{result['n_cells']} cells complete, "
              f"{result['n_results']} rows) in {args.out}: " + ", ".join(sorted(result["files"])))
    return 0


def _export(args) -> int:
    path = export(args.store, args.out, args.format)
    print(f"exported {args.store} to {path}")
    return 0


def add_sweep_commands(subparsers) -> None:
    """Registers sweep, merge, report and export on an argparse subparsers object."""
    sweep = subparsers.add_parser("sweep", help="run a sweep config's grid into a results store (resumable)")
    sweep.add_argument("config", help="configs/FILE.py[:variant] returning a SweepConfig")
    sweep.add_argument("--shard", default="0/1", help="i/n: run this job's share of the units (0 <= i < n)")
    sweep.add_argument("--units", metavar="LIST",
                       help="run only these unit numbers, e.g. 48-50,24 (within --shard; --plan lists them)")
    sweep.add_argument("--plan", action="store_true",
                       help="list every unit with its number and its state in --store (done, partial, "
                            "pending), run nothing")
    sweep.add_argument("--store", help="SQLite results store (default runs/sweep/CONFIG[-shard-i-of-n].sqlite)")
    sweep.add_argument("--log", help="this run's log file (default STORE.run-TIME-PID.log)")
    sweep.add_argument("--reuse", action="append", default=[], metavar="STORE",
                       help="copy finished units of the same cells (same victim weights) from another "
                            "store instead of running them; repeatable")
    sweep.add_argument("--reuse-only", dest="reuse_only", action="store_true",
                       help="with --reuse: copy what the other stores have and run nothing (assemble a store)")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a sweep key, e.g. --set pixels=1,3 --set attack.population_size=50")
    sweep.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    sweep.set_defaults(run=_sweep)

    merge = subparsers.add_parser("merge", help="combine stores of one sweep (e.g. its shards)")
    merge.add_argument("out", help="merged store (created, or extended when it exists)")
    merge.add_argument("inputs", nargs="+", help="stores to merge")
    merge.add_argument("--json", action="store_true", help="print the counts as JSON")
    merge.set_defaults(run=_merge)

    report = subparsers.add_parser("report", help="paper-style tables and figures from a store")
    report.add_argument("store", nargs="+", help="results store (several only with --operators)")
    report.add_argument("--out", required=True, help="report folder")
    report.add_argument("--note", metavar="FILE", help="with --operators: markdown conclusion to print in the report")
    report.add_argument("--operators", action="store_true",
                        help="the operator study's report (operators.md: success with 95%% CI, queries, "
                             "anytime curves, McNemar vs rand/1) over one or more stores")
    report.add_argument("--robustness", action="store_true",
                        help="compare `deattack robustness` folders (NAME=FOLDER or FOLDER) on the same images: "
                             "robust accuracy against k of each, and the images only one of them fooled")
    report.add_argument("--baseline", default="rand/1/none/constant", metavar="OPERATOR",
                        help="with --operators: the operator every other is paired against, as the report "
                             "names it; the default is the paper's DE/rand/1")
    report.add_argument("--no-figures", dest="no_figures", action="store_true", help="tables only, no PNGs")
    report.add_argument("--json", action="store_true", help="print the written files as JSON")
    report.set_defaults(run=_report)

    export = subparsers.add_parser("export", help="a store's result rows as CSV (or Parquet)")
    export.add_argument("store", help="SQLite results store")
    export.add_argument("--out", required=True, help="FILE.csv or FILE.parquet")
    export.add_argument("--format", choices=["csv", "parquet"], help="output format (default: from --out's "
                                                                     "suffix)")
    export.set_defaults(run=_export)
