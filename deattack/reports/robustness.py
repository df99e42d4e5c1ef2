"""The robust-accuracy report: a table and the standard L0 plot (robust accuracy against
the number of pixels k) of a `deattack.attack.robustness.Robustness` evaluation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deattack.reports.figures import pyplot
from deattack.reports.format import markdown_table, percent


def robustness_table(summary: Mapping[str, Any]) -> str:
    """Markdown: one row a k (robust accuracy, fooled / attacked, success among correct)."""
    columns = [("k pixels", lambda r: str(r["k"])),
               ("robust accuracy", lambda r: percent(r["robust_accuracy"])),
               ("fooled (cumulative)", lambda r: str(r["fooled"])),
               ("attacked at this k", lambda r: str(r["attacked"])),
               ("attack success among correct", lambda r: percent(r["success_rate"]))]
    return markdown_table(summary["rows"], columns)


def write_robustness(summary: Mapping[str, Any], out: str | Path, title: str, command: str = "",
                     figure: bool = True) -> dict[str, str]:
    """OUT/robustness.json, OUT/robustness.md and OUT/robust_accuracy.png; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "robustness.json", "markdown": out / "robustness.md"}
    files["json"].write_text(json.dumps({"title": title, "command": command, **summary}, indent=1) + "\n")
    lines = [f"# Robust accuracy: {title}", "", *([f"- command: `{command}`"] if command else []),
             f"- images: {summary['n_images']} (clean accuracy {percent(summary['clean_accuracy'])}); "
             f"robust accuracy = share of all of them classified correctly after the attack with at most k "
             f"pixels; an image fooled at k is not attacked at larger k", "", robustness_table(summary), ""]
    files["markdown"].write_text("\n".join(lines))
    if figure:
        files["figure"] = _plot(summary, out / "robust_accuracy.png", title)
    return {name: str(path) for name, path in files.items()}


def _plot(summary: Mapping[str, Any], path: Path, title: str) -> Path:
    plt = pyplot()
    ks = [row["k"] for row in summary["rows"]]
    figure, axis = plt.subplots(figsize=(5.2, 3.8), layout="constrained")
    axis.plot(ks, [100 * row["robust_accuracy"] for row in summary["rows"]], marker="o")
    axis.axhline(100 * summary["clean_accuracy"], color="grey", linestyle=":", label="clean accuracy")
    axis.set_xscale("log")
    axis.set_xticks(ks, [str(k) for k in ks])
    axis.set_ylim(0, 100)
    axis.set_xlabel("pixels changed, at most k")
    axis.set_ylabel("robust accuracy (%)")
    axis.set_title(title, fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def read_robustness(folder: str | Path) -> dict[str, Any]:
    """The robustness.json a `deattack robustness` run wrote in `folder`."""
    path = Path(folder) / "robustness.json"
    if not path.is_file():
        raise ValueError(f"{folder} holds no robustness.json (a `deattack robustness --out` folder)")
    return json.loads(path.read_text())


def comparison_table(named: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: robust accuracy of each run (columns) at each k (rows), and per k how
    many images each run fooled that the others did not (same images required)."""
    names = list(named)
    ks = [row["k"] for row in next(iter(named.values()))["rows"]]
    rows = []
    for position, k in enumerate(ks):
        row = {"k": k}
        fooled = {}
        for name in names:
            row[name] = named[name]["rows"][position]["robust_accuracy"]
            fooled[name] = {i for i, s in named[name]["smallest_k"].items() if 0 < s <= k}
        for name in names:
            others = set().union(*(fooled[o] for o in names if o != name)) if len(names) > 1 else set()
            row[f"{name} only"] = len(fooled[name] - others)
        rows.append(row)
    columns = [("k", lambda r: str(r["k"]))]
    columns += [(f"robust acc. {n}", lambda r, n=n: percent(r[n])) for n in names]
    columns += [(f"fooled only by {n}", lambda r, n=n: str(r[f"{n} only"])) for n in names]
    return markdown_table(rows, columns)


def write_comparison(folders: Mapping[str, str | Path], out: str | Path, command: str = "",
                     figure: bool = True) -> dict[str, str]:
    """OUT/robustness_comparison.md (+ .png): several runs on the same images, by name."""
    named = {name: read_robustness(folder) for name, folder in folders.items()}
    images = {name: sorted(s["smallest_k"]) for name, s in named.items()}
    if len({tuple(v) for v in images.values()}) > 1:
        raise ValueError("the robustness runs attacked different images; compare runs on the same images")
    ks = {name: [row["k"] for row in s["rows"]] for name, s in named.items()}
    if len({tuple(v) for v in ks.values()}) > 1:
        raise ValueError(f"the robustness runs used different ks: {ks}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Robust accuracy against k: comparison", "", *([f"- command: `{command}`"] if command else []),
             *[f"- {name}: {s['title']} (`{s['command']}`)" for name, s in named.items()], "",
             comparison_table(named), ""]
    files = {"markdown": out / "robustness_comparison.md"}
    files["markdown"].write_text("\n".join(lines))
    if figure:
        plt = pyplot()
        fig, axis = plt.subplots(figsize=(5.6, 4.0), layout="constrained")
        for name, summary in named.items():
            axis.plot([r["k"] for r in summary["rows"]], [100 * r["robust_accuracy"] for r in summary["rows"]],
                      marker="o", label=name)
        first = next(iter(named.values()))
        axis.axhline(100 * first["clean_accuracy"], color="grey", linestyle=":", label="clean accuracy")
        axis.set_xscale("log")
        first_ks = ks[next(iter(named))]
        axis.set_xticks(first_ks, [str(k) for k in first_ks])
        axis.set(ylim=(0, 100), xlabel="pixels changed, at most k", ylabel="robust accuracy (%)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        files["figure"] = out / "robustness_comparison.png"
        fig.savefig(files["figure"], dpi=120)
        plt.close(fig)
    return {name: str(path) for name, path in files.items()}
