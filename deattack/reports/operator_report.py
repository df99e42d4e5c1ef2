"""The operator study's report (issue 7): which DE operator attacks best at equal queries.

  deattack report runs/sweep/operators-screen.sqlite [more stores] --operators --out docs/results

reads one or more sweep stores (configs/operators.py) and writes operators.md,
operators.json and operators_anytime.png into --out. Per setting (victim, pixels,
mode) and operator, the seeds of its finished cells pooled:

- success rate with its 95 % Wilson score interval;
- median queries to success (over successes);
- the anytime curve: success rate after q queries for every q = 0 .. budget, read from
  each problem's queries to success (one run gives the whole curve); its mean over
  q in [0, budget] (the area under it, as a fraction) and its value at fixed budgets;
- a paired comparison with DE/rand/1 (Su et al. 2019) on the same problems (seed,
  image, target): the exact McNemar test, i.e. a two-sided binomial test of the
  discordant pairs b (only the variant succeeds) and c (only rand/1 does) against 1/2;
  and, since an image's seeds are not independent problems, the exact sign-flip test
  over images of each image's differences summed over its seeds.

NumPy and the standard library only (scipy is a test dependency): the tests check the
Wilson interval and the McNemar p-value against scipy.stats.
"""

from __future__ import annotations

import collections
import json
import math
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack.attack.searches import max_queries, operator_name
from deattack.reports import sweep_report as report
from deattack.reports.figures import pyplot
from deattack.reports.stats import mcnemar_exact, sign_flip_exact, wilson_interval
from deattack.sweep import grid

BASELINE = "rand/1/none/constant"
CHECKPOINTS = (400, 2_000, 8_192, 40_400)  # queries at which the tables read the anytime curve


# --- statistics -------------------------------------------------------------------------


def per_image_differences(records: Mapping[tuple, Any], baseline: Mapping[tuple, Any],
                          shared: Sequence[tuple], value: Any) -> list[int]:
    """For each image (the problems' image_index), the sum over its shared problems (its
    seeds and targets) of value(ours, theirs), each in {-1, 0, 1}."""
    sums: dict[int, int] = collections.defaultdict(int)
    for key in shared:
        sums[key[1]] += value(records[key], baseline[key])
    return list(sums.values())


def _success_difference(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> int:
    return int(bool(ours["success"])) - int(bool(theirs["success"]))


def _first_difference(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> int:
    a, b = _queries_to_success(ours), _queries_to_success(theirs)
    return int(a < b) - int(b < a)


def anytime_success(queries_to_success: Sequence[int], attacked: int, budget: int) -> np.ndarray:
    """Success rate after q queries, for every q = 0 .. budget.

    Args:
      queries_to_success: the queries each successful problem spent (<= budget).
      attacked: problems attacked (successes and failures).
      budget: the largest q.

    Returns:
      float64 [budget + 1]: entry q is #(queries_to_success <= q) / attacked.
    """
    counts = np.bincount(np.minimum(np.asarray(queries_to_success, np.int64), budget + 1),
                         minlength=budget + 2)[:budget + 1]
    return np.cumsum(counts) / max(attacked, 1)


# --- grouping -------------------------------------------------------------------------


def collect(stores: Sequence[str | os.PathLike]) -> dict[tuple, dict[str, Any]]:
    """Reads stores into {(victim, pixels, mode, targets, operator): group}.

    A group holds its records keyed by (seed, image_index, target), its budget, whether
    every cell is complete, and `left_out`: (seed, units done, units total) of each cell
    not finished. A finished cell's records count; an unfinished cell's do not, even the
    chunks it has: a seed half run covers only its first images, so pooling it would
    compare the operator with the others over different problems. Identical cells in
    several stores (the same cell id) count once, so a follow-up store may reuse the
    screen's cells.
    """
    groups: dict[tuple, dict[str, Any]] = {}
    seen_cells = set()
    for path in stores:
        data = report.load(path)
        chunks_done = {(unit["cell_id"], unit["chunk"]) for unit in data.units}
        for cell in data.cells:
            if cell["cell_id"] in seen_cells:
                continue
            seen_cells.add(cell["cell_id"])
            attack = cell["config"]["attack"]
            key = (cell["victim"], cell["n_pixels"], cell["mode"], cell["targets"] if cell["mode"] == "targeted"
                   else "-", operator_name(attack))
            group = groups.setdefault(key, {"records": {}, "budget": 0, "complete": True, "left_out": [],
                                            "search": attack.get("search", "de")})
            group["budget"] = max(group["budget"], max_queries(attack))
            if cell["units_done"] < cell["units_total"]:
                group["complete"] = False
                total = cell["units_total"]
                missing = tuple(grid.unit_number(cell["position"], chunk, total) for chunk in range(total)
                                if (cell["cell_id"], chunk) not in chunks_done)
                group["left_out"].append((cell["seed"], cell["units_done"], total, str(path), missing,
                                          _sweep_spec(data.runs)))
                continue
            for record in data.cell_records(cell["cell_id"]):
                if record["status"] != report.NONFINITE:
                    group["records"][(cell["seed"], record["image_index"], record["target"])] = record
    return groups


def _sweep_spec(runs: Sequence[Mapping[str, Any]]) -> str:
    """The config argument of the store's latest `deattack sweep` run ("CONFIG" if none)."""
    for run in reversed(runs):
        words = shlex.split(run.get("command") or "")
        if run.get("kind") == "sweep" and "sweep" in words[:-1]:
            return words[words.index("sweep") + 1]
    return "CONFIG"


def _finishing_commands(groups: Mapping[tuple, Mapping[str, Any]]) -> list[str]:
    """One `deattack sweep ... --units` a store, running the units its unfinished cells lack."""
    missing: dict[tuple[str, str], set[int]] = {}
    for group in groups.values():
        for _seed, _done, _total, store, units, spec in group["left_out"]:
            missing.setdefault((spec, store), set()).update(units)
    return [f"deattack sweep {spec} --store {store} --units {grid.format_units(units)}"
            for (spec, store), units in sorted(missing.items())]


def group_stats(group: Mapping[str, Any], baseline: Mapping[str, Any] | None,
                horizon: int | None = None) -> dict[str, Any]:
    """One operator's numbers in one setting; the anytime curve runs to `horizon` (the
    setting's largest budget, default the group's own), flat after the group's budget, so
    every operator of a setting is read over the same query range."""
    records = group["records"]
    attacked = len(records)
    queries = [r["queries"] for r in records.values() if r["success"]]
    successes = len(queries)
    # No problems yet (a cell registered but not run): no interval, rather than (0, 1).
    low, high = wilson_interval(successes, attacked) if attacked else (None, None)
    horizon = max(horizon or 0, group["budget"])
    curve = anytime_success(queries, attacked, horizon)
    stats = {
        # Seeds with results, not registered ones: a sweep in progress has seeds to come.
        "n_problems": attacked, "n_seeds": len({seed for seed, _, _ in records}), "n_success": successes,
        "success_rate": successes / attacked if attacked else None, "ci_low": low, "ci_high": high,
        "median_queries_success": float(np.median(queries)) if queries else None,
        "anytime_mean": float(curve.mean()) if attacked else None,
        "success_at": {q: float(curve[min(q, horizon)]) for q in CHECKPOINTS if attacked},
        "budget": group["budget"], "horizon": horizon, "complete": group["complete"],
        "pairs": None, "only_variant": None, "only_baseline": None, "paired_difference": None,
        "mcnemar_p": None, "faster": None, "slower": None, "sign_p": None,
        "images_paired": None, "image_success_p": None, "image_first_p": None,
    }
    if baseline is not None:
        shared = sorted(set(records) & set(baseline["records"]))
        stats.update(pairs=len(shared))
        if shared:  # no shared problems: nothing was compared, so no counts and no p-values
            only_variant = sum(records[k]["success"] and not baseline["records"][k]["success"] for k in shared)
            only_baseline = sum(baseline["records"][k]["success"] and not records[k]["success"] for k in shared)
            faster, slower = paired_speed(records, baseline["records"], shared)
            stats.update(only_variant=only_variant, only_baseline=only_baseline,
                         paired_difference=(only_variant - only_baseline) / len(shared),
                         mcnemar_p=mcnemar_exact(only_variant, only_baseline),
                         faster=faster, slower=slower, sign_p=mcnemar_exact(faster, slower))
            # Seeds of one image are not independent problems: the same tests over images.
            theirs = baseline["records"]
            stats.update(
                images_paired=len({key[1] for key in shared}),
                image_success_p=sign_flip_exact(per_image_differences(records, theirs, shared,
                                                                      _success_difference)),
                image_first_p=sign_flip_exact(per_image_differences(records, theirs, shared, _first_difference)))
    return stats


def _queries_to_success(record: Mapping[str, Any]) -> float:
    return record["queries"] if record["success"] else math.inf


def paired_speed(records: Mapping[tuple, Any], baseline: Mapping[tuple, Any],
                 shared: Sequence[tuple]) -> tuple[int, int]:
    """(problems the operator solves in strictly fewer queries than the baseline, problems
    the baseline solves in strictly fewer), an unsolved problem counting as infinitely
    many queries; ties (both unsolved, or the same count) are left out. The sign test on
    these two counts asks "which gets there first" at equal budget, which the final
    success rate cannot tell once both solve nearly everything."""
    ours = [_queries_to_success(records[k]) for k in shared]
    theirs = [_queries_to_success(baseline[k]) for k in shared]
    return (sum(a < b for a, b in zip(ours, theirs)), sum(b < a for a, b in zip(ours, theirs)))


def study_tables(groups: Mapping[tuple, Mapping[str, Any]], baseline: str = BASELINE) -> dict[tuple, list[dict]]:
    """{setting (victim, pixels, mode, targets): rows sorted by success rate}, each row a
    group's stats plus its operator; rows are paired against `baseline` when present."""
    tables: dict[tuple, list[dict]] = collections.defaultdict(list)
    horizons: dict[tuple, int] = collections.defaultdict(int)
    for key, group in groups.items():
        horizons[key[:4]] = max(horizons[key[:4]], group["budget"])
    for key, group in groups.items():
        setting, operator = key[:4], key[4]
        reference = groups.get((*setting, baseline))
        paired = reference if reference is not None and operator != baseline else None
        tables[setting].append({"operator": operator, **group_stats(group, paired, horizons[setting])})
    for rows in tables.values():
        rows.sort(key=lambda r: (-(r["success_rate"] or 0), r["median_queries_success"] or math.inf))
    return dict(sorted(tables.items(), key=lambda item: (item[0][0], item[0][2], item[0][1])))


def ranking(tables: Mapping[tuple, Sequence[Mapping[str, Any]]], baseline: str = BASELINE) -> list[dict[str, Any]]:
    """Operators by their mean paired gain over `baseline`: in each setting both ran, the
    operator's success minus the baseline's on the problems (seed, image, target) both
    attacked, averaged over those settings (the baseline's own gain is 0). Operators run
    in different settings are so each measured against the same reference, not against
    the settings' difficulty. Ties, and operators with no paired setting (ranked last):
    mean success, then mean anytime, over their own settings.

    Each entry: operator, settings (how many it ran), mean_success / mean_anytime (over
    them), gain_settings (how many were paired with the baseline), mean_paired_gain
    (None when none was)."""
    runs: dict[str, list[Mapping[str, Any]]] = collections.defaultdict(list)
    for rows in tables.values():
        for row in rows:
            if row["success_rate"] is not None:
                runs[row["operator"]].append(row)
    ranked = []
    for op, rows in runs.items():
        gains = [0.0 if op == baseline else row["paired_difference"] for row in rows
                 if op == baseline or row.get("paired_difference") is not None]
        ranked.append({"operator": op, "settings": len(rows),
                       "mean_success": float(np.mean([r["success_rate"] for r in rows])),
                       "mean_anytime": float(np.mean([r["anytime_mean"] for r in rows])),
                       "gain_settings": len(gains), "mean_paired_gain": float(np.mean(gains)) if gains else None})
    return sorted(ranked, key=lambda r: (r["mean_paired_gain"] is None, -(r["mean_paired_gain"] or 0.0),
                                         -r["mean_success"], -r["mean_anytime"]))


# --- output ---------------------------------------------------------------------------


def _setting_title(setting: tuple) -> str:
    victim, pixels, mode, targets = setting
    return f"{victim}, {pixels} px, {mode}" + (f" ({targets} targets)" if mode == "targeted" else "")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f} pt"


def _p_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value >= 1e-4 else "<1e-4"


def table_markdown(rows: Sequence[Mapping[str, Any]], baseline: str = BASELINE) -> str:
    checkpoints = [q for q in CHECKPOINTS if any(q < r["horizon"] for r in rows)]
    versus = "rand/1" if baseline == BASELINE else baseline
    header = (["Operator", "Problems", "Seeds", "Success", "95% CI", "Median queries to success"]
              + [f"Success at {q:,} q" for q in checkpoints]
              + ["Anytime mean", f"vs {versus}: paired diff (b / c)", "McNemar p",
                 f"vs {versus}: first / later", "Sign test p", "Per-image p: success / first"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        paired = "-" if r["pairs"] is None else (
            f"{100 * r['paired_difference']:+.1f} pt ({r['only_variant']} / {r['only_baseline']})"
            if r["pairs"] else "no shared problems")
        cells = [r["operator"] + ("" if r["complete"] else " (incomplete)"), str(r["n_problems"]),
                 str(r["n_seeds"]), _percent(r["success_rate"]),
                 "-" if r["ci_low"] is None else f"{_percent(r['ci_low'])} - {_percent(r['ci_high'])}",
                 "-" if r["median_queries_success"] is None else f"{r['median_queries_success']:,.0f}"]
        cells += [_percent(r["success_at"].get(q)) for q in checkpoints]
        speed = "-" if r["faster"] is None else f"{r['faster']} / {r['slower']}"
        per_image = "-" if r.get("image_success_p") is None else (
            f"{_p_value(r['image_success_p'])} / {_p_value(r['image_first_p'])}")
        cells += [_percent(r["anytime_mean"]), paired, _p_value(r["mcnemar_p"]), speed, _p_value(r["sign_p"]),
                  per_image]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure_anytime(groups: Mapping[tuple, Mapping[str, Any]], tables: Mapping[tuple, Any], path: Path,
                   baseline: str = BASELINE) -> Path:
    """Success vs queries, a panel per setting, a line per operator (log query axis)."""
    plt = pyplot()
    settings = list(tables)
    columns = min(len(settings), 2) or 1
    rows = -(-len(settings) // columns) or 1
    figure, axes = plt.subplots(rows, columns, figsize=(7.5 * columns, 5 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    colours = plt.get_cmap("tab20")
    for axis, setting in zip(axes.ravel(), settings):
        axis.axis("on")
        for index, row in enumerate(tables[setting]):
            group = groups[(*setting, row["operator"])]
            queries = [r["queries"] for r in group["records"].values() if r["success"]]
            curve = anytime_success(queries, len(group["records"]), row["horizon"])
            steps = np.arange(1, len(curve))
            is_baseline = row["operator"] == baseline
            axis.plot(steps, 100 * curve[1:], label=row["operator"], linewidth=2.4 if is_baseline else 1.1,
                      color="black" if is_baseline else colours(index % 20),
                      linestyle="-" if index < 10 or is_baseline else "--")
        axis.set_xscale("log")
        axis.set_xlabel("queries")
        axis.set_ylabel("success rate (%)")
        axis.set_ylim(0, 100)
        axis.set_title(_setting_title(setting), fontsize=10)
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=6, ncol=2, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _incomplete_cells(groups: Mapping[tuple, Mapping[str, Any]]) -> list[str]:
    """One line a cell not finished: its setting, operator and each seed's units."""
    return sorted(_setting_title(k[:4]) + ": " + k[4] + ": " + ", ".join(
        f"seed {seed} ({done} of {total} units; to run: {grid.format_units(units)})"
        for seed, done, total, _store, units, _spec in sorted(g["left_out"]))
        for k, g in groups.items() if not g["complete"])


def _ranking_lines(ranked: Sequence[Mapping[str, Any]], baseline: str) -> list[str]:
    """The ranking section: how operators are ranked across settings, then the table."""
    lines = ["## Ranking", "",
             f"Ranked by the mean paired gain over {baseline}: in each setting an operator ran, its success "
             f"minus {baseline}'s on the problems (seed, image, target) both attacked, averaged over the "
             "settings it ran with the baseline beside it. Operators ran in different settings (how many: "
             "\"settings\"), so a rank averages different settings; the per-setting tables below are the "
             "comparison.", "",
             "| Rank | Operator | Mean paired gain over the baseline | Settings | Mean success | Mean anytime |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {i + 1} | {r['operator']} | {_points(r['mean_paired_gain'])} | {r['settings']} | "
              f"{_percent(r['mean_success'])} | {_percent(r['mean_anytime'])} |" for i, r in enumerate(ranked)]
    lines.append("")
    return lines


def _definition_lines(baseline: str) -> list[str]:
    """What the tables' columns mean and how each number is computed."""
    return ["## Definitions", "",
            "- Success: re-verified misclassification (untargeted) or target class (targeted) of a correctly "
            "classified test image; 95% CI: Wilson score interval over the problems (seeds pooled; a "
            "cell not finished is left out, see 'Incomplete cells').",
            "- Queries: DE and CMA-ES are charged their population (CMA-ES: lambda = P) at init and per "
            "generation run (P (g + 1)); the exhaustive "
            "scan is charged sequentially up to its first fooling candidate (deattack/attack/exhaustive.py). "
            "The anytime curve at q is the fraction of problems solved within q queries (flat after an "
            "operator's own budget, e.g. the scan's 8,192); 'Anytime mean' is its mean over q = 0 .. the "
            "setting's largest budget, the same range for every operator of a setting.",
            f"- Paired test: the same (seed, image, target) under the operator and {baseline}; b = only the "
            "operator succeeds, c = only the baseline does; exact two-sided McNemar p = "
            "min(1, 2 P(Bin(b + c, 1/2) <= min(b, c))). With several seeds an image appears once per seed, "
            "so those pairs are not independent and p is approximate.",
            f"- First / later: problems the operator solves in strictly fewer queries than {baseline} / "
            "in strictly more (unsolved = never; ties left out); sign test p = the same exact binomial on "
            "those two counts. Queries are counted per generation (P at a time), so DE variants tie often; "
            "the scan's sequential count is not comparable one to one.",
            "- Per-image p: the two tests above with the image, not the (seed, image) pair, as the "
            "independent unit: each image's difference summed over its seeds (success: operator minus "
            "baseline; first: first minus later), then the exact two-sided sign-flip test of those sums "
            "(p = P(|sum of randomly signed sums| >= |observed sum|)). It equals the McNemar / sign test p "
            "when every image is one problem (one seed, one target); with several seeds it is the one to "
            "read.", ""]


def _incomplete_lines(incomplete: Sequence[str], groups: Mapping[tuple, Mapping[str, Any]]) -> list[str]:
    """The cells left out of the tables and the commands that finish them."""
    lines = ["## Incomplete cells", "",
             "Cells not finished, left out of the tables (a row marked \"(incomplete)\" is over its "
             "finished seeds only), with the units each has run:", ""]
    lines += [f"- {name}" for name in incomplete] + [""]
    lines += ["Each store's missing units, run where it is (it resumes; CONFIG is the sweep config "
              "the store was written with):", ""]
    lines += [f"    {command}" for command in _finishing_commands(groups)] + [""]
    return lines


def build_operator_report(stores: Sequence[str | os.PathLike], out: str | os.PathLike, *, command: str = "",
                          figures: bool = True, baseline: str = BASELINE, note: str = "") -> dict[str, Any]:
    """Writes operators.md, operators.json and (unless figures=False) operators_anytime.png.

    `note`: the conclusion, written after reading the numbers; printed under "Conclusion".

    Returns:
      {"tables": {setting title: rows}, "ranking": [...], "files": {...}} as in operators.json.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    groups = collect(stores)
    tables = study_tables(groups, baseline)
    ranked = ranking(tables, baseline)
    files = {}
    if figures and tables:
        files["anytime"] = str(figure_anytime(groups, tables, out / "operators_anytime.png", baseline))
    incomplete = _incomplete_cells(groups)
    lines = ["# DE operators for few-pixel attacks at equal queries", "",
             f"- stores: {', '.join(str(Path(s)) for s in stores)}", f"- report command: `{command or '-'}`",
             f"- settings: {len(tables)}, operator cells: {len(groups)}"
             + (f" ({len(incomplete)} incomplete)" if incomplete else ""), ""]
    if note.strip():
        lines += ["## Conclusion", "", note.strip(), ""]
    lines += _ranking_lines(ranked, baseline)
    for setting, rows in tables.items():
        lines += [f"## {_setting_title(setting)}", "", table_markdown(rows, baseline), ""]
    if files:
        lines += ["## Success vs queries", "", f"![success vs queries per operator]({Path(files['anytime']).name})", ""]
    lines += _definition_lines(baseline)
    if incomplete:
        lines += _incomplete_lines(incomplete, groups)
    (out / "operators.md").write_text("\n".join(lines))
    result = {"stores": [str(Path(s).resolve()) for s in stores], "command": command, "ranking": ranked,
              "tables": {_setting_title(s): rows for s, rows in tables.items()},
              "files": {**files, "markdown": str(out / "operators.md")}}
    (out / "operators.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    return result
