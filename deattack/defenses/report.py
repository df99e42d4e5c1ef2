"""docs/results/defenses.md from a defense evaluation's run folder: clean accuracy and
accuracy cost, attack success (default and adaptive) of each defended victim beside
its undefended twin, a verdict per defense, and a figure (success vs pixels).

    deattack defenses configs/defenses.py:lenet --out runs/defenses/lenet --report docs/results/defenses.md
    deattack defenses configs/defenses.py:resnet20_trained --out RUN --report docs/results/defenses.md \\
        --report-only --also WRAPPERS_RUN   # other folders' rows in the same tables
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path
from typing import Any

from deattack.defenses.evaluate import HOLD_MARGIN, comparison_rows, verdicts
from deattack.reports.figures import pyplot
from deattack.reports.format import markdown_table, number, percent


def _rate(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "-"
    mark = "" if cell.get("complete", True) else "*"
    return f"{percent(cell['success_rate'])} ({cell['n_attacked']}){mark}"


def _queries(cell: dict[str, Any] | None) -> str:
    return "-" if not cell else number(cell["median_queries_success"], 0)


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f} pp"


def figure(rows: list[dict[str, Any]], path: Path) -> Path:
    """Success rate vs pixels, a panel per mode: each defense under the adaptive attack
    (solid) and the default one (dotted), its twin under the same attacks (dashed)."""

    plt = pyplot()
    modes = [m for m in ("untargeted", "targeted") if any(r["mode"] == m for r in rows)] or ["untargeted"]
    fig, axes = plt.subplots(1, len(modes), figsize=(5.2 * len(modes), 4.6), squeeze=False, layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # Rows of several run folders carry a "scale" (their image set): a curve per (defense, scale).
    label = lambda r, name: f"{name} {r['scale']}" if r.get("scale") else name  # noqa: E731
    defenses = list(dict.fromkeys(label(r, r["defended"]) for r in rows))
    for axis, mode in zip(axes[0], modes):
        drawn_twins = set()
        for index, defended in enumerate(defenses):
            colour = colours[index % len(colours)]
            mine = sorted((r for r in rows if label(r, r["defended"]) == defended and r["mode"] == mode),
                          key=lambda r: r["n_pixels"])
            for which, style in (("adaptive", "-"), ("default", ":")):
                points = [(r["n_pixels"], 100 * r[f"{which}_defended"]["success_rate"]) for r in mine
                          if r[f"{which}_defended"] and r[f"{which}_defended"]["success_rate"] is not None]
                if points:
                    axis.plot(*zip(*points), style, marker="o", color=colour, label=f"{defended} ({which})")
            if not mine:
                continue
            twin = label(mine[0], mine[0]["twin"])
            # A wrapper's twin faces the default attack only; a trained defense's twin both budgets.
            for which in ("default", "adaptive") if mine[0]["kind"] == "trained" else ("default",):
                points = [(r["n_pixels"], 100 * r[f"{which}_twin"]["success_rate"]) for r in mine
                          if r[f"{which}_twin"] and r[f"{which}_twin"]["success_rate"] is not None]
                if points and (twin, which) not in drawn_twins:
                    drawn_twins.add((twin, which))
                    budget = " (adaptive budget)" if which == "adaptive" else ""
                    axis.plot(*zip(*points), "--", marker="s", color="grey" if budget else "black",
                              label=f"{twin}, undefended{budget}")
        axis.set_title(mode, fontsize=10)
        axis.set_xlabel("pixels changed (K)")
        axis.set_ylabel("attack success rate (%)")
        axis.set_ylim(0, 100)
        measured = {r["n_pixels"] for r in rows for which in ("default_defended", "adaptive_defended")
                    if r[which] and r[which]["success_rate"] is not None}
        axis.set_xticks(sorted(measured) or [1])
        axis.grid(alpha=0.3)
    # One legend under both panels: the per-panel legends covered the curves.
    legend = {}
    for axis in axes[0]:
        for handle, text in zip(*axis.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend.keys()), loc="outside lower center", ncol=3, fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _scale(config) -> str:
    images = config.images
    return f"{images.split} [{images.start}, {images.start + images.count})"


def _budget(attack) -> str:
    return (f"{attack.mutation}/{attack.crossover}/{attack.adaptation}, F {attack.differential_weight}, "
            f"population {attack.population_size} x {attack.max_generations} generations "
            f"({attack.max_queries:,} queries), fitness {attack.fitness}, targets {attack.targets}")


def _also_line(run_dir, config, main) -> str:
    """One header line for a run folder whose rows join the main folder's tables."""
    attacks = []
    for name, attack, reference in (("default", config.attack, main.attack),
                                    ("adaptive", config.adaptive_attack, main.adaptive_attack)):
        attacks.append(f"{name} attack as above" if attack == reference else f"{name} attack {_budget(attack)}")
    return (f"- also `{Path(run_dir)}` (`{config.name}`): images {_scale(config)}; pixels "
            f"{', '.join(map(str, config.pixels))}; {'; '.join(attacks)}")


def _other_run(folder: str | os.PathLike) -> dict[str, Any]:
    """An --also run folder: its config, comparison rows, clean accuracy and own verdicts."""
    other, other_rows, other_clean = comparison_rows(folder)
    return {"run_dir": str(folder), "config": other, "rows": other_rows, "clean": other_clean,
            "verdicts": verdicts(other, other_rows, other_clean)}


def _with_scale(items: list[dict[str, Any]], config) -> list[dict[str, Any]]:
    """Each item marked with the image set of the folder it comes from."""
    return [{**item, "scale": _scale(config)} for item in items]


def _header_lines(run_dir, command: str, config, clean: dict, extra: list[dict[str, Any]]) -> list[str]:
    """The title and the bullet list that says what ran and how to read the tables."""
    attack, adaptive = config.attack, config.adaptive_attack
    return [
        f"# Defenses against few-pixel attacks: {config.name}", "",
        f"- run folder: `{Path(run_dir)}`; report command: `{command or '-'}`",
        f"- images: {_scale(config)}, "
        "each victim attacked on those it classifies correctly; clean accuracy on the first "
        f"{next(iter(clean.values()), {}).get('n_images', '-')} test images",
        f"- default attack: {_budget(attack)}; pixels {', '.join(map(str, config.pixels))}",
        f"- adaptive attack on trained defenses (and their twins): {_budget(adaptive)}; pixels "
        f"{', '.join(map(str, config.adaptive_pixels))}",
        *[_also_line(run["run_dir"], run["config"], config) for run in extra],
        "- wrappers (`DEFENSE+victim`): *default* = the attack on the undefended twin, its output fed to the "
        "wrapped system (an attacker who ignores the defense); *adaptive* = the same attack run end to end "
        "through the wrapper (the transform is part of the model it queries), and for an outlier repair "
        "also with every colour kept within the repair's threshold of its clean 8 neighbours' median, "
        "where a lone pixel passes it (`neighbour_radius`, the *aware* sweep): the stronger of the two "
        "on the same problems, `†` where it is the aware one.",
        f"- a defense **holds** when its adaptive success stays at least {100 * HOLD_MARGIN:.0f} points below "
        "the undefended twin's under the same attack at every pixel count and mode where the twin is fooled "
        f"at least {100 * HOLD_MARGIN:.0f}% of the time; the drop columns are over those cells.",
        "- success cells: rate (attacked problems); `*` = cell not finished.", "",
    ]


def _verdict_table(all_verdicts: list[dict[str, Any]], images_column: list) -> list[str]:
    return ["## Verdict and accuracy cost", "", markdown_table(all_verdicts, [
        ("Defense", lambda v: f"`{v['defended']}`"), *images_column, ("Kind", lambda v: v["kind"]),
        ("Twin", lambda v: f"`{v['twin']}`"),
        ("Clean accuracy", lambda v: percent(v["clean_accuracy"])),
        ("Twin clean accuracy", lambda v: percent(v["twin_clean_accuracy"])),
        ("Accuracy cost", lambda v: _points(v["accuracy_cost"])),
        ("Min success drop, default", lambda v: _points(v["min_default_drop"])),
        ("Min success drop, adaptive", lambda v: _points(v["min_adaptive_drop"])),
        ("Verdict", lambda v: v["verdict"]),
    ]), ""]


def _success_tables(all_rows: list[dict[str, Any]], images_column: list) -> list[str]:
    """One table a mode (in the order the rows first show it): a row a (defense, pixels)."""
    by_mode = collections.defaultdict(list)
    for row in all_rows:
        by_mode[row["mode"]].append(row)
    lines = []
    for mode, mode_rows in by_mode.items():
        lines += [f"## Attack success, {mode}", ""]
        lines.append(markdown_table(mode_rows, [
            ("Defense", lambda r: f"`{r['defended']}`"), *images_column, ("Pixels", lambda r: str(r["n_pixels"])),
            ("Default: defended", lambda r: _rate(r["default_defended"])),
            ("Default: twin", lambda r: _rate(r["default_twin"])),
            ("Adaptive: defended", lambda r: _rate(r["adaptive_defended"])
             + ("†" if r.get("adaptive_by") == "aware" else "")),
            ("Adaptive: twin", lambda r: _rate(r["adaptive_twin"])),
            ("Median queries to success (default / adaptive, defended)",
             lambda r: f"{_queries(r['default_defended'])} / {_queries(r['adaptive_defended'])}"),
        ]))
        lines.append("")
    return lines


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike, *, command: str = "",
                 figures: bool = True, also: tuple[str | os.PathLike, ...] = (), note: str = "") -> dict[str, Any]:
    """Writes OUT (markdown), OUT's stem + "_success_vs_pixels.png" and + ".json" beside it.

    `also`: further run folders (e.g. the wrappers, evaluated on another image set) whose
    verdicts and success rows join the tables, each row marked with its image set; their
    verdicts are their own folder's (never pooled across image sets). `note`: the
    conclusion, written after reading the numbers (a file under docs/results); printed
    under "Conclusion".

    Returns:
      {"rows": ..., "verdicts": ..., "clean": ..., "also": [...], "files": {...}} (also the JSON file).
    """
    config, rows, clean = comparison_rows(run_dir)
    found = verdicts(config, rows, clean)
    extra = [_other_run(folder) for folder in also]
    if extra:  # several image sets in one table: every row says which
        rows, found = _with_scale(rows, config), _with_scale(found, config)
        for run in extra:
            for key in ("rows", "verdicts"):
                run[key] = _with_scale(run[key], run["config"])
    all_rows = rows + [r for run in extra for r in run["rows"]]
    all_verdicts = found + [v for run in extra for v in run["verdicts"]]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    files = {"markdown": str(out), "json": str(out.with_suffix(".json"))}
    if figures:
        files["figure"] = str(figure(all_rows, out.with_name(out.stem + "_success_vs_pixels.png")))

    lines = _header_lines(run_dir, command, config, clean, extra)
    if note.strip():
        lines += ["## Conclusion", "", note.strip(), ""]
    images_column = [("Images", lambda r: r["scale"])] if extra else []
    lines += _verdict_table(all_verdicts, images_column) + _success_tables(all_rows, images_column)
    if figures:
        lines += ["## Figure", "", f"![success vs pixels]({Path(files['figure']).name})", ""]
    out.write_text("\n".join(lines))
    result = {"run_dir": str(run_dir), "command": command, "config": config.to_json(), "clean": clean,
              "rows": rows, "verdicts": found, "files": files,
              "also": [{**run, "config": run["config"].to_json()} for run in extra]}
    Path(files["json"]).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
