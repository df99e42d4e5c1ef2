"""Defended victims against their undefended twins, under the default attack and under
an attack that knows the defense.

    config = get_config("lenet")                       # configs/defenses.py
    run_defenses(config, "runs/defenses/lenet")        # resumable: the sweeps resume
    write_report("runs/defenses/lenet", "docs/results/defenses.md")

A pair is (defended victim, undefended twin). Two kinds:

- wrapper ("median3+resnet20"): the default attack is the oblivious one, the attack
  on the twin whose output (the best candidate of each problem) is then fed to the
  wrapped system ("transfer"); the adaptive attack runs end to end through the
  wrapper (its apply_fn includes the transform), with the same budget.
- trained ("resnet20_deadpixel"): the default attack runs on it directly; the
  adaptive one gets a larger budget (`adaptive_attack`) and more pixels
  (`adaptive_pixels`), and the twin is attacked with the same budget for comparison.

Everything lands in a run folder: config.json, clean.json (clean test accuracy of
every victim), default.sqlite and adaptive.sqlite (deattack.sweep stores, one row a
problem; `deattack report` reads them too) and transfer.json (the oblivious attack on
wrappers). A defense "holds" when the adaptive attack's success on it is at least
HOLD_MARGIN below the twin's at every pixel count and mode where the twin is fooled
at least HOLD_MARGIN of the time (elsewhere there is nothing to defend); one that only
hides the gradient-free search's signal drops the default success and not the
adaptive one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack import data
from deattack.attack.config import AttackConfig, paper_config
from deattack.attack.perturb import numpy_apply_pixels
from deattack.reports.sweep_report import NONFINITE, cell_stats, load
from deattack.sweep.grid import GRID_KEYS, ImageSet, SweepConfig, parse_shard
from deattack.sweep.run import SweepProgress, run_sweep
from deattack.victims import loading
from deattack.victims.defended import split_victim_spec
from deattack.victims.victim import correctly_classified, predict, victim_fingerprint

HOLD_MARGIN = 0.10  # success-rate points a defense must stay below its twin to "hold"
_GRID_DEFAULTS = AttackConfig()
# Fields added after run folders were first written, at the defaults those folders ran with.
_FIELDS_ADDED_LATER = {"aware_attack": True}


def repair_threshold(spec: str) -> float | None:
    """The outlier repair's threshold in a wrapper spec ("repair:threshold=32+lenet" -> 32.0), else None."""

    if "+" not in spec:
        return None
    thresholds = [dict(d.options)["threshold"] for d in split_victim_spec(spec)[0] if d.name == "repair"]
    return thresholds[-1] if thresholds else None


@dataclasses.dataclass(frozen=True)
class DefenseEvalConfig:
    """What to compare and with which attacks.

    Attributes:
      name: a label for the stores and the report.
      pairs: (defended victim spec, undefended twin) pairs; a spec with "+" is a
        wrapper ("median3+resnet20"), any other a trained defense ("resnet20_deadpixel").
      pixels, modes: the default attack's grid.
      images: the attacked image set (correctly classified images only, per victim).
      attack: the default attack (shared by every cell; grid fields at their defaults).
      adaptive_attack: the stronger attack on trained defenses and their twins.
      adaptive_pixels: its pixel counts ("more pixels").
      clean_images: the first N test images for clean accuracy.
      chunk_images: images per sweep unit.
      aware_attack: wrappers with an outlier repair are also attacked end to end with
        every colour kept within the repair's threshold of its clean neighbours' median
        (AttackConfig.neighbour_radius; deattack.attack.confine), where a lone pixel
        passes the repair: the "aware" sweep, `attack` otherwise. Their adaptive success
        is the stronger of it and the plain end-to-end attack.

    The conclusion, written after reading the numbers, is not a config field: it lives in
    docs/results (a note file given to the report: `deattack defenses ... --note FILE`).
    """

    name: str = "defenses"
    pairs: tuple[tuple[str, str], ...] = (("median3+resnet20", "resnet20"),)
    pixels: tuple[int, ...] = (1, 3, 5)
    modes: tuple[str, ...] = ("untargeted", "targeted")
    images: ImageSet = ImageSet(count=100)
    attack: AttackConfig = paper_config(targets="random", slots=64)
    adaptive_attack: AttackConfig = paper_config(targets="random", slots=64, fitness="margin",
                                                 max_generations=200)
    adaptive_pixels: tuple[int, ...] = (1, 3, 5, 10)
    clean_images: int = 10000
    chunk_images: int = 16
    aware_attack: bool = True

    def __post_init__(self):
        pairs = tuple(tuple(pair) for pair in self.pairs)
        object.__setattr__(self, "pairs", pairs)
        if not pairs:
            raise ValueError("pairs is empty: nothing to compare")
        for pair in pairs:
            if len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
                raise ValueError(f"pairs: {pair!r} is not a (defended victim, undefended twin) pair of names")
            if pair[0] == pair[1]:
                raise ValueError(f"pairs: {pair!r} compares a victim with itself")
            if "+" in pair[1]:
                raise ValueError(f"pairs: the twin {pair[1]!r} must be undefended (no '+')")
        for field in ("pixels", "adaptive_pixels", "modes"):
            value = getattr(self, field)
            object.__setattr__(self, field, tuple(value) if isinstance(value, (list, tuple)) else (value,))
        if not isinstance(self.aware_attack, bool):
            raise ValueError(f"aware_attack must be True or False, got {self.aware_attack!r}")
        if not isinstance(self.clean_images, int) or self.clean_images < 1:
            raise ValueError(f"clean_images must be an integer >= 1, got {self.clean_images!r}")
        self.sweeps()  # grid values, attacks and image set are checked by SweepConfig

    def kind(self, defended: str) -> str:
        return "wrapper" if "+" in defended else "trained"

    def victims(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for pair in self.pairs for name in pair))

    def sweeps(self) -> dict[str, SweepConfig]:
        """{"default": every victim, the default attack; "adaptive": trained defenses and
        their twins, the adaptive attack (absent without trained defenses); "aware": the
        wrappers with an outlier repair, the default attack with colours confined under
        its threshold (absent without them or with aware_attack off)}."""
        sweeps = {"default": _sweep(f"{self.name}-default", self.victims(), self.pixels, self.modes,
                                    self.attack, self.images, self.chunk_images)}
        trained = tuple(dict.fromkeys(name for d, twin in self.pairs if self.kind(d) == "trained"
                                      for name in (d, twin)))
        if trained:
            sweeps["adaptive"] = _sweep(f"{self.name}-adaptive", trained, self.adaptive_pixels, self.modes,
                                        self.adaptive_attack, self.images, self.chunk_images)
        repaired = {d: repair_threshold(d) for d, _ in self.pairs if self.kind(d) == "wrapper"}
        repaired = {d: t for d, t in repaired.items() if t is not None}
        if self.aware_attack and repaired:
            if len(set(repaired.values())) > 1:
                raise ValueError(f"the aware sweep confines colours to one radius, but the repairs' thresholds "
                                 f"differ: {repaired}; evaluate them in separate configs")
            attack = dataclasses.replace(self.attack, neighbour_radius=next(iter(repaired.values())))
            sweeps["aware"] = _sweep(f"{self.name}-aware", tuple(repaired), self.pixels, self.modes,
                                     attack, self.images, self.chunk_images)
        return sweeps

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _comparable(config_json: dict[str, Any]) -> dict[str, Any]:
    """A saved config without the note folders written before the conclusion moved to
    docs/results held, attack fields added since it was written at their defaults (a
    folder written before a field existed ran with its default)."""
    defaults = dataclasses.asdict(AttackConfig())
    out = {**_FIELDS_ADDED_LATER, **{k: v for k, v in config_json.items() if k != "note"}}
    for key in ("attack", "adaptive_attack"):
        if isinstance(out.get(key), dict):
            out[key] = {**defaults, **out[key]}
    return out


def _sweep(name, victims, pixels, modes, attack: AttackConfig, images, chunk_images) -> SweepConfig:
    """A SweepConfig; the attack's grid fields (mutation, seed, ...) move into the grid."""
    grid = {key: (getattr(attack, field),) for key, field in GRID_KEYS.items()
            if field and field not in ("pixels", "mode")}
    shared = dataclasses.replace(attack, **{field: getattr(_GRID_DEFAULTS, field)
                                            for field in GRID_KEYS.values() if field})
    return SweepConfig(name=name, victims=tuple(victims), pixels=tuple(pixels), modes=tuple(modes),
                       images=images, attack=shared, chunk_images=chunk_images, **grid)


# --- running --------------------------------------------------------------------------


def resolve_victims(specs, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Spec -> Victim: from `given`, else wrappers around given / loaded victims, else loaded."""

    loaded = {}
    for spec in specs:
        if given is not None and spec in given:
            loaded[spec] = given[spec]
        elif "+" in spec:
            loaded[spec] = loading.load_defended(spec, given=given)
        else:
            loaded[spec] = loading.load_victim(spec)
    return loaded


def clean_accuracy(victims: Mapping[str, Any], images: np.ndarray, labels: np.ndarray,
                   previous: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """{spec: {"accuracy", "n_images", "fingerprint"}}; entries of `previous` with the same
    fingerprint and image count are reused."""

    result = {}
    for spec, victim in victims.items():
        fingerprint = victim_fingerprint(victim) + "|" + victim.name
        old = (previous or {}).get(spec)
        if old and old.get("fingerprint") == fingerprint and old.get("n_images") == len(labels):
            result[spec] = dict(old)
            continue
        correct = correctly_classified(victim, images, labels)
        result[spec] = {"accuracy": float(np.mean(correct)), "n_images": int(len(labels)),
                        "fingerprint": fingerprint}
    return result


def transfer(config: DefenseEvalConfig, store_path: str | os.PathLike, victims: Mapping[str, Any],
             images: np.ndarray) -> list[dict[str, Any]]:
    """The oblivious attack on wrappers: every twin problem's output fed to the wrapper.

    A problem counts when the wrapped victim classifies its clean image correctly;
    success is the criterion (untargeted: not the true class; targeted: the target)
    on the wrapped victim. Queries are the twin attack's.
    """

    data = load(store_path)
    rows = []
    for defended, twin in config.pairs:
        if config.kind(defended) != "wrapper":
            continue
        victim = victims[defended]
        for cell in (c for c in data.cells if c["victim"] == twin):
            records = [r for r in data.cell_records(cell["cell_id"]) if r["status"] != NONFINITE]
            if records:
                indices = np.asarray([r["image_index"] for r in records])
                clean = np.argmax(predict(victim, images[indices].astype(np.float32)), -1)
                adversarial = np.stack([numpy_apply_pixels(images[r["image_index"]],
                                                           np.asarray(r["pixels"]).reshape(-1)) for r in records])
                predicted = np.argmax(predict(victim, adversarial), -1)
            kept, successes, queries = 0, 0, []
            for i, record in enumerate(records):
                if clean[i] != record["true_label"]:
                    continue
                kept += 1
                fooled = (predicted[i] != record["true_label"] if record["target"] < 0
                          else predicted[i] == record["target"])
                if fooled:
                    successes += 1
                    queries.append(record["queries"])
            rows.append({"defended": defended, "twin": twin, "n_pixels": cell["n_pixels"], "mode": cell["mode"],
                         "n_attacked": kept, "n_success": successes,
                         "success_rate": successes / kept if kept else None,
                         "median_queries_success": float(np.median(queries)) if queries else None})
    return rows


def _check_only(only: Sequence[str], sweeps: Mapping[str, SweepConfig]) -> None:
    """Refuses an --only name that is not one of this evaluation's sweeps."""
    unknown = sorted(set(only) - set(sweeps))
    if unknown:
        raise ValueError(f"--only {', '.join(unknown)}: this evaluation's sweeps are {', '.join(sweeps)}")


def _reuse_stores(reuse: Sequence[str | os.PathLike], reuse_only: bool) -> list[Path]:
    """The stores of the --reuse run folders (default.sqlite, adaptive.sqlite), checked."""
    reuse_stores = []
    for folder in map(Path, reuse):
        stores = [path for path in (folder / "default.sqlite", folder / "adaptive.sqlite") if path.is_file()]
        if not stores:
            raise ValueError(f"--reuse {folder}: not a defense run folder (no default.sqlite or adaptive.sqlite)")
        reuse_stores += stores
    if reuse_only and not reuse_stores:
        raise ValueError("--reuse-only copies from --reuse run folders: give at least one --reuse RUN_DIR")
    return reuse_stores


def _write_config(config: DefenseEvalConfig, out: Path) -> None:
    """Writes out/config.json, refusing a folder that holds another evaluation's config."""
    config_path = out / "config.json"
    written = config.to_json()
    if config_path.is_file():
        saved = json.loads(config_path.read_text())
        if _comparable(saved) != _comparable(written):
            raise ValueError(f"{out} holds an evaluation with another config; pick a new --out "
                             "or rerun with the same settings to resume")
        if "note" in saved:  # a folder written when the conclusion was a config field keeps it
            written["note"] = saved["note"]
    config_path.write_text(json.dumps(written, indent=2, sort_keys=True) + "\n")


def _dataset_split(datasets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
                   name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of a split: from `datasets` when it has it, else loaded."""
    if datasets is not None and name in datasets:
        return tuple(np.asarray(a) for a in datasets[name])
    return data.load_split(name)


def _write_clean_accuracy(config: DefenseEvalConfig, clean_path: Path, victims: Mapping[str, Any],
                          test_split: tuple[np.ndarray, np.ndarray]) -> dict[str, dict[str, Any]]:
    """clean_accuracy on the first config.clean_images test images, into clean.json (its
    entries reused where still valid)."""
    test_images, test_labels = test_split
    count = min(config.clean_images, len(test_labels))
    previous = json.loads(clean_path.read_text()) if clean_path.is_file() else None
    clean = clean_accuracy(victims, test_images[:count], test_labels[:count], previous)
    clean_path.write_text(json.dumps(clean, indent=2, sort_keys=True) + "\n")
    return clean


def _run_sweeps(sweeps: Mapping[str, SweepConfig], out: Path, victims: Mapping[str, Any], split: str,
                datasets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
                on_progress: Callable[[str, SweepProgress], None] | None, **options) -> dict[str, Any]:
    """{kind: run_sweep summary}, each sweep into out/KIND.sqlite; `options` go to run_sweep."""
    summaries = {}
    for kind, sweep in sweeps.items():
        callback = (lambda progress, kind=kind: on_progress(kind, progress)) if on_progress else None
        summaries[kind] = run_sweep(sweep, out / f"{kind}.sqlite", victims=victims,
                                    datasets={split: _dataset_split(datasets, split)},
                                    on_progress=callback, **options)
    return summaries


def run_defenses(
    config: DefenseEvalConfig,
    out_dir: str | os.PathLike,
    *,
    victims: Mapping[str, Any] | None = None,
    datasets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    on_progress: Callable[[str, SweepProgress], None] | None = None,
    command: str = "",
    shard: tuple[int, int] | str = (0, 1),
    reuse: Sequence[str | os.PathLike] = (),
    reuse_only: bool = False,
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Clean accuracy, the sweeps, the transfer attack; resumable (the sweeps resume).

    Args:
      config: the DefenseEvalConfig.
      out_dir: the run folder (created; a rerun with the same config resumes).
      victims: optional spec -> Victim (tests); wrappers around given victims are built.
      datasets: optional split -> (images, labels) instead of deattack.data.load_split.
      on_progress: called with (sweep kind, SweepProgress) after every unit.
      command: the command line, recorded in the stores.
      shard: (i, n) or "i/n": run only unit u with u mod n == i of each sweep (as
        `deattack sweep --shard`), into the same folder; the n shards together run every
        unit once, whether one after another or side by side (the stores take
        concurrent writers). Lets one cell of a large evaluation run on its own.
      reuse: other run folders whose finished units of the same cells (same victim
        weights, attack and images; e.g. the undefended twin's cells, which every
        evaluation of that twin on those images shares) are copied instead of run, from
        either of their stores.
      reuse_only: copy what `reuse` has, run no unit, then the transfer attack on what
        is there (the oblivious attack on wrappers needs only the twin's cells).
      only: run only these sweeps ("default", "adaptive", "aware"; empty = all), e.g. the
        aware sweep of a folder whose other sweeps ran before; `shard` then counts its units.

    Returns:
      {"clean": ..., "sweeps": {kind: run_sweep summary}, "transfer": rows}.

    Raises:
      ValueError: the folder holds another evaluation's config.
    """

    shard = parse_shard(shard)  # a bad shard is refused before the folder is touched
    sweeps = config.sweeps()
    _check_only(only, sweeps)
    reuse_stores = _reuse_stores(reuse, reuse_only)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_config(config, out)
    loaded = resolve_victims(config.victims(), victims)
    clean = _write_clean_accuracy(config, out / "clean.json", loaded, _dataset_split(datasets, "test"))
    chosen = {kind: sweep for kind, sweep in sweeps.items() if not only or kind in only}
    summaries = _run_sweeps(chosen, out, loaded, config.images.split, datasets, on_progress, command=command,
                            shard=shard, reuse=reuse_stores, reuse_only=reuse_only)
    attacked_images = _dataset_split(datasets, config.images.split)[0]
    transfer_rows = transfer(config, out / "default.sqlite", loaded, attacked_images)
    (out / "transfer.json").write_text(json.dumps(transfer_rows, indent=2, sort_keys=True) + "\n")
    return {"clean": clean, "sweeps": summaries, "transfer": transfer_rows}


# --- numbers for the report -----------------------------------------------------------


def _stats_by_cell(store_path: Path) -> dict[tuple[str, int, str], dict[str, Any]]:
    if not store_path.is_file():
        return {}
    data = load(store_path)
    return {(c["victim"], c["n_pixels"], c["mode"]): cell_stats(c, data.cell_records(c["cell_id"]))
            for c in data.cells}


def _pick(stats: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if stats is None or not stats.get("n_attacked"):
        return None
    return {"success_rate": stats["success_rate"], "n_attacked": stats["n_attacked"],
            "median_queries_success": stats["median_queries_success"],
            "complete": stats.get("complete", True)}


def comparison_rows(run_dir: str | os.PathLike) -> tuple[DefenseEvalConfig, list[dict[str, Any]], dict]:
    """(config, one row a (pair, pixels, mode), clean accuracy) from a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a defense run folder: it has no config.json "
                                "(`deattack defenses CONFIG --out DIR` writes one)")
    saved = json.loads((run_dir / "config.json").read_text())
    saved.pop("note", None)  # folders written when the conclusion was a config field
    config = DefenseEvalConfig(
        **{**saved, "images": ImageSet(**saved["images"]), "attack": AttackConfig(**saved["attack"]),
           "adaptive_attack": AttackConfig(**saved["adaptive_attack"])})
    clean = json.loads((run_dir / "clean.json").read_text()) if (run_dir / "clean.json").is_file() else {}
    default = _stats_by_cell(run_dir / "default.sqlite")
    adaptive = _stats_by_cell(run_dir / "adaptive.sqlite")
    aware = _stats_by_cell(run_dir / "aware.sqlite")
    transfer_path = run_dir / "transfer.json"
    transferred = {(r["defended"], r["n_pixels"], r["mode"]): r
                   for r in (json.loads(transfer_path.read_text()) if transfer_path.is_file() else [])}
    rows = []
    for defended, twin in config.pairs:
        kind = config.kind(defended)
        pixels = sorted(set(config.pixels) | (set(config.adaptive_pixels) if kind == "trained" else set()))
        for mode in config.modes:
            for k in pixels:
                if kind == "wrapper":
                    cells = {"default_defended": transferred.get((defended, k, mode)),
                             "default_twin": default.get((twin, k, mode)),
                             "adaptive_twin": default.get((twin, k, mode))}
                else:
                    cells = {"default_defended": default.get((defended, k, mode)),
                             "default_twin": default.get((twin, k, mode)),
                             "adaptive_defended": adaptive.get((defended, k, mode)),
                             "adaptive_twin": adaptive.get((twin, k, mode))}
                row = {"defended": defended, "twin": twin, "kind": kind, "n_pixels": k, "mode": mode,
                       **{name: _pick(stats) for name, stats in cells.items()}}
                if kind == "wrapper":  # the stronger of plain end to end and aware
                    row["end_to_end_defended"] = _pick(default.get((defended, k, mode)))
                    row["aware_defended"] = _pick(aware.get((defended, k, mode)))
                    row["adaptive_defended"], row["adaptive_by"] = _stronger(row["end_to_end_defended"],
                                                                             row["aware_defended"])
                rows.append(row)
    return config, rows, clean


def _stronger(end_to_end: dict[str, Any] | None, aware: dict[str, Any] | None) -> tuple[dict | None, str | None]:
    """A wrapper's adaptive cell: the attack with the higher success rate on the same
    problems (a tie or a missing aware cell: the plain end-to-end one), and which it was."""
    if aware is None or aware["success_rate"] is None:
        return end_to_end, "end to end" if end_to_end else None
    if end_to_end is None or end_to_end["success_rate"] is None or aware["success_rate"] > end_to_end["success_rate"]:
        return aware, "aware"
    return end_to_end, "end to end"


def verdicts(config: DefenseEvalConfig, rows: list[dict[str, Any]],
             clean: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per pair: accuracy cost, success drop under each attack, and whether it holds."""
    result = []
    for defended, twin in config.pairs:
        mine = [r for r in rows if r["defended"] == defended]

        def drops(which):
            """Twin success - defended success where the twin is fooled often enough to tell."""
            values = []
            for r in mine:
                d, t = r[f"{which}_defended"], r[f"{which}_twin"]
                if (d and t and d["success_rate"] is not None and t["success_rate"] is not None
                        and t["success_rate"] >= HOLD_MARGIN):
                    values.append(t["success_rate"] - d["success_rate"])
            return values

        default_drops, adaptive_drops = drops("default"), drops("adaptive")
        if not adaptive_drops:
            verdict = (f"undecided: no adaptive cell where the twin is fooled at least {100 * HOLD_MARGIN:.0f}% "
                       "of the time (or no numbers yet)")
        elif min(adaptive_drops) >= HOLD_MARGIN:
            verdict = "holds"
        elif max(adaptive_drops) >= HOLD_MARGIN:
            # Checked before "only hides": a cell where the adaptive attack stays far below
            # the twin is a real cut there, whatever the other cells do.
            verdict = "partly: holds only at some pixel counts / modes"
        elif default_drops and min(default_drops) >= HOLD_MARGIN:
            verdict = "does not hold: only hides the search's signal (default attack drops, adaptive not)"
        else:
            verdict = "does not hold"
        accuracy = clean.get(defended, {}).get("accuracy")
        twin_accuracy = clean.get(twin, {}).get("accuracy")
        result.append({
            "defended": defended, "twin": twin, "kind": config.kind(defended),
            "clean_accuracy": accuracy, "twin_clean_accuracy": twin_accuracy,
            "accuracy_cost": (twin_accuracy - accuracy) if accuracy is not None and twin_accuracy is not None
            else None,
            "min_default_drop": min(default_drops) if default_drops else None,
            "min_adaptive_drop": min(adaptive_drops) if adaptive_drops else None,
            "mean_adaptive_drop": float(np.mean(adaptive_drops)) if adaptive_drops else None,
            "verdict": verdict})
    return result
