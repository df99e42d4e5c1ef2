"""Paper-style tables and figures from a sweep's results store.

  deattack report runs/sweep/su2019_sweep.sqlite --out reports/su2019

writes report.md, report.tex, report.json (every number of the tables) and PNG figures:

- Su, Vargas & Sakurai (TEVC 2019), Table: per victim and pixel count, untargeted and
  targeted: success rate, mean confidence of the adversarial class over successes and,
  for targeted "all", the fraction of images pushed to at least one target class and
  the average number of target classes an image can be pushed to.
- one-pixel-attack-keras (Hyperparticle) README table: model, parameters, test accuracy,
  pixels, untargeted and targeted success rate.
- success rate vs pixels per victim; original x target class success heatmap (Su et al.
  Fig. 3 style); success rate after q queries ("anytime") per operator; histogram of
  queries to success; a grid of adversarial examples (of the first cell with a success).

Rates count attacked problems (status other than "nonfinite_logits"), as
`deattack.attack.results.summarize` does; each row of a table is one grid cell (victim,
pixels, mode, operator, seed), so nothing is averaged across settings silently.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack import data
from deattack.attack.searches import operator_name
from deattack.reports.figures import adversarial_grid, pyplot
from deattack.reports.format import latex_table, markdown_table, number, percent
from deattack.sweep.store import Store

NONFINITE = "nonfinite_logits"


@dataclasses.dataclass
class ReportData:
    """A store read into memory: cells (with units done), result records, meta, runs."""

    path: Path
    sweep_config: dict[str, Any]
    cells: list[dict[str, Any]]
    units: list[dict[str, Any]]
    records: list[dict[str, Any]]
    runs: list[dict[str, Any]]

    def cell_records(self, cell_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["cell_id"] == cell_id]


def load(store_path: str | os.PathLike) -> ReportData:
    with Store(store_path, read_only=True) as store:
        cells = store.cells()
        units = store.units()
        records = store.results()
        runs = store.runs()
        config = store.sweep_config() or {}
    done = collections.Counter(u["cell_id"] for u in units)
    for cell in cells:
        attack = cell["config"]["attack"]
        cell.update(n_pixels=attack["pixels"], mode=attack["mode"], targets=attack["targets"],
                    seed=attack["seed"], operator=operator_name(attack), units_done=done[cell["cell_id"]])
    return ReportData(Path(store_path), config, cells, units, records, runs)


# --- numbers --------------------------------------------------------------------------


def cell_stats(cell: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One cell's numbers (see the module docstring for their definitions)."""
    attacked = [r for r in records if r["status"] != NONFINITE]
    successes = [r for r in attacked if r["success"]]
    images = sorted({r["image_index"] for r in attacked})
    stats = {
        "cell_id": cell["cell_id"], "victim": cell["victim"], "model": cell["model"],
        "n_pixels": cell["n_pixels"], "mode": cell["mode"], "targets": cell["targets"],
        "operator": cell["operator"], "seed": cell["seed"],
        "complete": cell["units_done"] >= cell["units_total"],
        "n_images": len(images), "n_problems": len(records), "n_attacked": len(attacked),
        "n_success": len(successes),
        "success_rate": len(successes) / len(attacked) if attacked else None,
        "mean_confidence": (float(np.mean([r["adversarial_confidence"] for r in successes]))
                            if successes else None),
        "median_queries_success": (float(np.median([r["queries"] for r in successes]))
                                   if successes else None),
        "image_success_rate": None,
        "targets_per_image": None,
    }
    if cell["mode"] == "targeted":
        per_image = collections.Counter(r["image_index"] for r in successes)
        stats["image_success_rate"] = (sum(1 for i in images if per_image[i] > 0) / len(images)
                                       if images else None)
        if cell["targets"] == "all":
            stats["targets_per_image"] = (float(np.mean([per_image[i] for i in images]))
                                          if images else None)
    return stats


def su2019_table(data: ReportData) -> list[dict[str, Any]]:
    """One row a cell, in grid order (Su et al. TEVC 2019, Tables 2-4 shape)."""
    return [cell_stats(cell, data.cell_records(cell["cell_id"])) for cell in data.cells]


def keras_table(data: ReportData) -> list[dict[str, Any]]:
    """One row a (victim, pixels, operator, seed): parameters, accuracy, untargeted and
    targeted success rate (one-pixel-attack-keras README shape)."""
    stats = su2019_table(data)
    accuracy_on_set = _accuracy_on_set(data)
    rows: dict[tuple, dict[str, Any]] = {}
    for cell, stat in zip(data.cells, stats):
        key = (cell["victim"], cell["n_pixels"], cell["operator"], cell["seed"])
        metadata = cell["victim_metadata"]
        row = rows.setdefault(key, {
            "victim": cell["victim"], "model": cell["model"], "params": metadata.get("params"),
            "test_accuracy": metadata.get("test_accuracy"),
            "accuracy_on_set": accuracy_on_set.get(cell["victim"]),
            "n_pixels": cell["n_pixels"], "operator": cell["operator"], "seed": cell["seed"],
            "untargeted_success": None, "targeted_success": None,
            "untargeted_problems": 0, "targeted_problems": 0,
        })
        row[f"{cell['mode']}_success"] = stat["success_rate"]
        row[f"{cell['mode']}_problems"] = stat["n_attacked"]
    return list(rows.values())


def _accuracy_on_set(data: ReportData) -> dict[str, float]:
    """Victim -> correctly classified / selected over the image set's finished chunks
    (every cell of a victim sees the same chunks, so each chunk counts once)."""
    victim_of = {cell["cell_id"]: cell["victim"] for cell in data.cells}
    chunks: dict[str, dict[int, tuple[int, int]]] = collections.defaultdict(dict)
    for unit in data.units:
        chunks[victim_of[unit["cell_id"]]][unit["chunk"]] = (unit["n_attacked"], unit["n_selected"])
    return {victim: sum(a for a, _ in c.values()) / sum(s for _, s in c.values())
            for victim, c in chunks.items() if sum(s for _, s in c.values())}


def class_heatmap(records: Sequence[Mapping[str, Any]], num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Targeted records -> (successes, attempts), each [C true, C target]."""
    successes = np.zeros((num_classes, num_classes), np.int64)
    attempts = np.zeros((num_classes, num_classes), np.int64)
    for r in records:
        if r["target"] < 0 or r["status"] == NONFINITE:
            continue
        attempts[r["true_label"], r["target"]] += 1
        successes[r["true_label"], r["target"]] += bool(r["success"])
    return successes, attempts


def anytime_curve(records: Sequence[Mapping[str, Any]], budget: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries q [Q], success rate after q queries [Q]): the fraction of attacked problems
    that succeeded within q queries."""
    attacked = [r for r in records if r["status"] != NONFINITE]
    queries = np.unique(np.concatenate([[0, budget], [r["queries"] for r in attacked if r["success"]]]))
    if not attacked:
        return queries, np.zeros(len(queries))
    found = np.sort([r["queries"] for r in attacked if r["success"]])
    return queries, np.searchsorted(found, queries, side="right") / len(attacked)


# --- text -----------------------------------------------------------------------------


def _varies(rows: Sequence[Mapping[str, Any]], key: str) -> bool:
    return len({row[key] for row in rows}) > 1


def su2019_columns(rows: Sequence[Mapping[str, Any]], mode: str) -> list[tuple[str, Any]]:
    columns = [("Victim", lambda r: r["victim"]), ("Pixels", lambda r: str(r["n_pixels"]))]
    if _varies(rows, "operator"):
        columns.append(("Operator", lambda r: r["operator"]))
    if _varies(rows, "seed"):
        columns.append(("Seed", lambda r: str(r["seed"])))
    columns += [("Images", lambda r: str(r["n_images"])), ("Problems", lambda r: str(r["n_attacked"])),
                ("Success rate", lambda r: percent(r["success_rate"])),
                ("Confidence", lambda r: percent(r["mean_confidence"]))]
    if mode == "targeted":
        columns += [("Images fooled (any target)", lambda r: percent(r["image_success_rate"])),
                    ("Target classes per image", lambda r: number(r["targets_per_image"]))]
    columns.append(("Complete", lambda r: "yes" if r["complete"] else "no"))
    return columns


def keras_columns(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    columns = [("Model", lambda r: r["victim"]),
               ("Parameters", lambda r: "-" if r["params"] is None else f"{r['params']:,}"),
               ("Test accuracy", lambda r: percent(r["test_accuracy"])),
               ("Accuracy on image set", lambda r: percent(r["accuracy_on_set"])),
               ("Pixels", lambda r: str(r["n_pixels"]))]
    if _varies(rows, "operator"):
        columns.append(("Operator", lambda r: r["operator"]))
    if _varies(rows, "seed"):
        columns.append(("Seed", lambda r: str(r["seed"])))
    columns += [("Attack success (untargeted)", lambda r: percent(r["untargeted_success"])),
                ("Attack success (targeted)", lambda r: percent(r["targeted_success"]))]
    return columns


# --- figures --------------------------------------------------------------------------


def figure_success_vs_pixels(stats: Sequence[Mapping[str, Any]], path: Path) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5, 3.5))
    series = collections.defaultdict(list)
    for s in stats:
        if s["success_rate"] is not None:
            series[(s["victim"], s["mode"], s["operator"], s["seed"])].append((s["n_pixels"], s["success_rate"]))
    multiple = len({k[2:] for k in series}) > 1
    for (victim, mode, operator, seed), points in sorted(series.items()):
        points.sort()
        label = f"{victim} {mode}" + (f" {operator} s{seed}" if multiple else "")
        axis.plot([p for p, _ in points], [100 * r for _, r in points], marker="o",
                  linestyle="-" if mode == "untargeted" else "--", label=label)
    axis.set_xlabel("pixels changed (K)")
    axis.set_ylabel("success rate (%)")
    axis.set_xticks(sorted({s["n_pixels"] for s in stats}) or [1])
    axis.set_ylim(0, 100)
    axis.grid(alpha=0.3)
    if series:
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def figure_class_heatmaps(data: ReportData, class_names: Sequence[str], path: Path) -> Path | None:
    """Original class x target class success rate, one panel per (victim, pixels) of
    targeted cells (Su et al. Fig. 3 style; rows: true class, columns: target)."""
    groups = collections.defaultdict(list)
    for cell in data.cells:
        if cell["mode"] == "targeted":
            groups[(cell["victim"], cell["n_pixels"])].extend(data.cell_records(cell["cell_id"]))
    if not groups:
        return None
    plt = pyplot()
    count = len(groups)
    columns = min(count, 3)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns + 1.0, 3.6 * rows), squeeze=False,
                                constrained_layout=True)
    for axis in axes.ravel():
        axis.axis("off")
    image = None
    for index, (axis, ((victim, pixels), records)) in enumerate(zip(axes.ravel(), sorted(groups.items()))):
        successes, attempts = class_heatmap(records, len(class_names))
        rate = np.where(attempts > 0, successes / np.maximum(attempts, 1), np.nan)
        axis.axis("on")
        axis.set_facecolor("0.85")  # grey: no image of that class was attacked towards that target
        image = axis.imshow(100 * rate, vmin=0, vmax=100, cmap="viridis")
        axis.set_title(f"{victim}, {pixels} px", fontsize=9)
        axis.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=6)
        axis.set_yticks(range(len(class_names)), class_names if index % columns == 0 else [], fontsize=6)
        axis.set_xlabel("target class", fontsize=8)
        if index % columns == 0:
            axis.set_ylabel("original class (grey: not attacked)", fontsize=8)
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label="success rate (%)", shrink=0.8)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _modes(data: ReportData) -> list[str]:
    present = {cell["mode"] for cell in data.cells}
    return [m for m in ("untargeted", "targeted") if m in present] or ["untargeted"]


def figure_anytime(data: ReportData, path: Path) -> Path:
    """Success rate after q queries, a panel per mode, a line per (victim, pixels, operator)."""
    plt = pyplot()
    modes = _modes(data)
    figure, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 3.6), squeeze=False)
    groups = collections.defaultdict(list)
    budgets = {}
    for cell in data.cells:
        key = (cell["mode"], cell["victim"], cell["n_pixels"], cell["operator"])
        groups[key].extend(data.cell_records(cell["cell_id"]))
        attack = cell["config"]["attack"]
        budgets[key] = attack["population_size"] * (attack["max_generations"] + 1)
    for axis, mode in zip(axes[0], modes):
        for key in sorted(k for k in groups if k[0] == mode):
            queries, rate = anytime_curve(groups[key], budgets[key])
            axis.step(queries, 100 * rate, where="post", label=f"{key[1]} {key[2]}px {key[3]}")
        axis.set_title(mode, fontsize=9)
        axis.set_xlabel("queries")
        axis.set_ylabel("success rate (%)")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
        if any(k[0] == mode for k in groups):
            axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def figure_queries_histogram(data: ReportData, path: Path) -> Path:
    """Queries to success, a panel per mode, one histogram per pixel count."""
    plt = pyplot()
    modes = _modes(data)
    figure, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 3.4), squeeze=False)
    pixels_of = {cell["cell_id"]: cell["n_pixels"] for cell in data.cells}
    mode_of = {cell["cell_id"]: cell["mode"] for cell in data.cells}
    for axis, mode in zip(axes[0], modes):
        by_pixels = collections.defaultdict(list)
        for r in data.records:
            if r["success"] and mode_of[r["cell_id"]] == mode:
                by_pixels[pixels_of[r["cell_id"]]].append(r["queries"])
        for pixels, queries in sorted(by_pixels.items()):
            axis.hist(queries, bins=30, alpha=0.6, label=f"{pixels} px")
        axis.set_title(f"{mode}: queries to success", fontsize=9)
        axis.set_xlabel("queries")
        axis.set_ylabel("problems")
        if by_pixels:
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


# --- the report -----------------------------------------------------------------------


def _class_names() -> tuple[str, ...]:
    try:
        return data.class_names()
    except Exception:  # tfds missing or data not prepared: numbers instead of names
        return tuple(str(i) for i in range(10))


def _split_images(split: str, datasets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None):
    if datasets is not None and split in datasets:
        return datasets[split][0]
    try:
        return data.load_split(split)[0]
    except Exception:
        return None


def _figures(data: ReportData, stats: list[dict[str, Any]], out: Path, class_names: Sequence[str] | None,
             datasets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None) -> tuple[dict[str, str], list[str]]:
    """Draws the figures into `out`; returns ({name: path}, notes on figures left out)."""
    files: dict[str, str] = {}
    notes: list[str] = []
    names = tuple(class_names) if class_names is not None else _class_names()
    files["success_vs_pixels"] = str(figure_success_vs_pixels(stats, out / "success_vs_pixels.png"))
    heatmap = figure_class_heatmaps(data, names, out / "class_heatmap.png")
    if heatmap is not None:
        files["class_heatmap"] = str(heatmap)
    files["anytime"] = str(figure_anytime(data, out / "success_vs_queries.png"))
    files["queries_histogram"] = str(figure_queries_histogram(data, out / "queries_to_success.png"))
    # One cell's examples, so the figure's title can name its victim, pixels and mode.
    cell = next((c for c in data.cells if any(r["success"] for r in data.cell_records(c["cell_id"]))), None)
    records = data.cell_records(cell["cell_id"]) if cell is not None else []
    successes = [r for r in records if r["success"]]
    split = data.sweep_config.get("images", {}).get("split", "test")
    images = _split_images(split, datasets) if successes else None
    if images is not None:
        by_index = {int(r["image_index"]): np.asarray(images[r["image_index"]]) for r in successes[:8]}
        files["examples"] = str(adversarial_grid(records, by_index, names, out / "examples.png",
                                                 model=cell["victim"], pixels=cell["n_pixels"], mode=cell["mode"]))
    elif successes:
        notes.append(f"no example grid: the {split!r} images could not be loaded")
    return files, notes


def _tables(data: ReportData, command: str, stats: list[dict[str, Any]],
            keras: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(markdown lines, LaTeX lines) of the header and the tables, the LaTeX document left
    open for what follows."""
    header = _header(data, command)
    markdown = [*header["markdown"], ""]
    latex = [r"\documentclass{article}", r"\usepackage{booktabs}", r"\begin{document}", *header["latex"]]
    for mode in ("untargeted", "targeted"):
        rows = [s for s in stats if s["mode"] == mode]
        if not rows:
            continue
        title = f"Su et al. (TEVC 2019) style: {mode}"
        columns = su2019_columns(rows, mode)
        markdown += [f"## {title}", "", markdown_table(rows, columns), ""]
        latex += [latex_table(rows, columns, title), ""]
    if keras:
        title = "one-pixel-attack-keras style"
        columns = keras_columns(keras)
        markdown += [f"## {title}", "", markdown_table(keras, columns), ""]
        latex += [latex_table(keras, columns, title), ""]
    return markdown, latex


def build_report(store_path: str | os.PathLike, out: str | os.PathLike, *, command: str = "",
                 figures: bool = True, class_names: Sequence[str] | None = None,
                 datasets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, Any]:
    """Writes report.md, report.tex, report.json and (unless figures=False) PNG figures.

    Args:
      store_path: a sweep's results store.
      out: the report folder.
      command: the command that made the report, printed in every header.
      class_names: class names for the heatmap and the examples (default: the dataset's).
      datasets: optional split -> (images, labels) for the examples grid (default: load the split).

    Returns:
      {"su2019": rows, "keras": rows, "files": {name: path}, ...} as also written to report.json.
    """
    data = load(store_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stats = su2019_table(data)
    keras = keras_table(data)
    files, notes = _figures(data, stats, out, class_names, datasets) if figures else ({}, [])
    markdown, latex = _tables(data, command, stats, keras)
    if files:
        markdown += ["## Figures", ""] + [f"![{name}]({Path(p).name})" for name, p in files.items()] + [""]
    if notes:
        markdown += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    latex.append(r"\end{document}")
    (out / "report.md").write_text("\n".join(markdown))
    (out / "report.tex").write_text("\n".join(latex) + "\n")
    files["markdown"] = str(out / "report.md")
    files["latex"] = str(out / "report.tex")
    result = {"store": str(Path(store_path).resolve()), "command": command, "sweep_config": data.sweep_config,
              "su2019": stats, "keras": keras, "files": files, "notes": notes,
              "n_results": len(data.records), "n_cells": len(data.cells),
              "n_cells_complete": sum(s["complete"] for s in stats)}
    (out / "report.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _header(data: ReportData, command: str) -> dict[str, list[str]]:
    store = str(data.path.resolve())
    complete = sum(c["units_done"] >= c["units_total"] for c in data.cells)
    runs = [f"{r['kind']} ({'shard ' + r['shard'] if r['shard'] else 'merge'}): {r['command'] or '-'}"
            for r in data.runs]
    config_json = json.dumps(data.sweep_config, indent=2, sort_keys=True)
    facts = [f"store: {store}", f"report command: {command or '-'}",
             f"cells: {len(data.cells)} ({complete} complete), result rows: {len(data.records)}"]
    markdown = ["# deattack sweep report", ""] + [f"- {f}" for f in facts]
    markdown += ["- runs that wrote the store:"] + [f"  - `{r}`" for r in runs]
    markdown += ["", "Sweep config:", "", "```json", config_json, "```"]
    latex = [r"\section*{deattack sweep report}", r"\begin{verbatim}", *facts, "runs that wrote the store:",
             *[f"  {r}" for r in runs], "sweep config:", config_json, r"\end{verbatim}"]
    return {"markdown": markdown, "latex": latex}
