"""A sweep: a grid of attack settings x victims over one image set, run as resumable,
shardable units into a SQLite results store (deattack.sweep.store).

    config = SweepConfig(victims=("lenet",), pixels=(1, 3, 5), modes=("untargeted", "targeted"))
    cells = expand(config)         # victims x pixels x modes x mutations x crossovers x adaptations x seeds
    run_sweep(config, "runs/sweep/x.sqlite", shard=(0, 2))   # half the units; rerun resumes

A unit is (cell, chunk of `chunk_images` consecutive images of the image set); it is
one batched `attack()` call and one store transaction. Problems of a unit are saved as
they finish (the store's `partial_results`), so a run stopped inside a long unit resumes
it without attacking them again. The unit list depends on the
config alone (not on the victims' predictions), so `--shard i/n` (unit u goes to shard
u mod n) splits the same work the same way in every job, and the shards' stores merge
into exactly the unsharded store (`deattack.sweep.merge.merge`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack import data
from deattack.attack.api import attack
from deattack.attack.targets import random_targets
from deattack.io_checks import check_output_file
from deattack.sweep.grid import (
    ImageSet,
    SweepConfig,
    Unit,
    expand,
    format_units,
    parse_shard,
    parse_units,
    select_units,
    units_of,
)
from deattack.sweep.programs import _count_program
from deattack.sweep.store import Store, StoreError, canonical_json
from deattack.victims import loading
from deattack.victims.victim import correctly_classified, num_classes, victim_fingerprint

log = logging.getLogger("deattack.sweep")
log.propagate = False  # a run logs to its own file (next to the store); the CLI prints progress


def plan(config: SweepConfig, store_path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every unit of the sweep with its number and, when the store exists, its state:
    "done" (with its rows and wall time), "partial" (problems a stopped run saved) or
    "pending". Reads the store without writing to it.

    Raises:
      StoreError: the store holds another sweep, or is not a results store.
    """
    units = units_of(config)
    done: dict[tuple[str, int], dict[str, Any]] = {}
    partial: dict[tuple[str, int], int] = {}
    if store_path is not None and Path(store_path).exists():
        with Store(store_path, read_only=True) as store:
            if not store.holds_sweep(config.key()):
                raise StoreError(f"{store_path} holds another sweep than {config.name} (or other settings "
                                 "of it): --plan reads the store of the same sweep config")
            done = {(row["cell_id"], row["chunk"]): row for row in store.units()}
            partial = store.partial_counts()
    rows = []
    for number, unit in enumerate(units):
        key = (unit.cell.cell_id, unit.chunk)
        row = {"unit": number, "cell": unit.cell.position, "cell_id": unit.cell.cell_id,
               "describe": unit.cell.describe(), "chunk": unit.chunk, "images": [unit.start, unit.stop],
               "state": "pending"}
        if key in done:
            row.update(state="done", rows=done[key]["n_records"], wall_s=done[key]["wall_s"])
        elif partial.get(key):
            row.update(state="partial", problems_saved=partial[key])
        rows.append(row)
    return rows


@dataclasses.dataclass
class SweepProgress:
    """Whole-sweep progress (this shard), passed to `on_progress` after every unit."""

    cells_total: int
    units_total: int
    images_total: int  # images in the shard's units (selected, before the correct-only filter)
    cells_done: int = 0
    units_done: int = 0  # including units found done in the store
    units_resumed: int = 0
    images_done: int = 0
    images_this_run: int = 0
    problems_this_run: int = 0
    successes_this_run: int = 0
    started: float = dataclasses.field(default_factory=time.time)
    last_unit: str = ""

    @property
    def elapsed_s(self) -> float:
        return time.time() - self.started

    @property
    def images_per_s(self) -> float:
        return self.images_this_run / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.images_per_s
        remaining = self.images_total - self.images_done
        return remaining / rate if rate > 0 else (0.0 if remaining == 0 else None)


def default_store_path(config_spec: str, shard: tuple[int, int] = (0, 1)) -> Path:
    """runs/sweep/<config file stem>[-variant][-shard-i-of-n].sqlite"""
    path_text, _, variant = config_spec.partition(":")
    name = Path(path_text).stem + (f"-{variant}" if variant else "")
    if shard[1] > 1:
        name += f"-shard-{shard[0]}-of-{shard[1]}"
    return Path("runs") / "sweep" / f"{name}.sqlite"


def default_log_path(store_path: str | os.PathLike) -> Path:
    """A log file per run next to the store: STORE.run-YYYYmmdd-HHMMSS-PID.log"""
    store_path = Path(store_path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return store_path.with_name(f"{store_path.name}.run-{stamp}-{os.getpid()}.log")


def run_sweep(
    config: SweepConfig,
    store_path: str | os.PathLike,
    *,
    shard: tuple[int, int] | str = (0, 1),
    units: str | Sequence[int] | None = None,
    victims: Mapping[str, Any] | None = None,
    datasets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
    on_unit: Callable[[Unit, int], None] | None = None,
    log_path: str | os.PathLike | None = None,
    command: str = "",
    reuse: Sequence[str | os.PathLike] = (),
    reuse_only: bool = False,
) -> dict[str, Any]:
    """Runs this shard's units of the sweep into the store; units already there are skipped.

    Everything is checked before any attack runs: the config (on construction), the
    shard, that the store holds this sweep (or is new), that every victim loads and the
    image range fits the split.

    Args:
      config: the SweepConfig.
      store_path: the SQLite store (created when absent; resumed when present).
      shard: (i, n) or "i/n": run units u with u mod n == i.
      units: run only these unit numbers ("48-50,24", or a sequence; see `plan`), within
        the shard; None runs all of the shard's.
      victims: optional name -> deattack.victims.Victim, used instead of loading those names.
      datasets: optional split -> (images, labels), used instead of deattack.data.load_split.
      on_progress: called with a SweepProgress after every unit (and once at the start).
      on_unit: called with (unit, rows written) after each unit is committed.
      log_path: this run's log file (default: next to the store, see default_log_path).
      command: the command line, recorded in the store's `runs` table and the log.
      reuse: other stores (of any sweep) whose finished units of the same cells are
        copied in instead of run: the same cell id (the results-relevant config and image
        set), the same victim weights (SHA-256) and the same images in the unit. A sweep
        extended with new operators or seeds reruns nothing it already has.
      reuse_only: copy what `reuse` has and run no unit (assembles a store from others;
        the rest stays pending for a later run).

    Returns:
      counts: units_total, units_run, units_resumed, units_reused, units_pending (left
      for a later run), rows_written (by the units run here; reused units' rows count in
      rows_in_store only), rows_in_store, wall_s.

    Raises:
      ValueError: bad shard, a store of another sweep, a victim that does not load or
        changed since the store was written, an image range outside the split, a store
        or log folder that cannot be written or whose disk is full (io_checks.OutputError).
    """
    planned = _plan_run(config, store_path, shard, units, log_path, command, reuse, reuse_only)
    loaded = _load_victims({u.cell.victim for u in planned.units}, victims)
    images, labels = _load_split(config.images, datasets)
    store = Store(planned.store_path)
    handler = _file_handler(planned.log_path)
    try:
        return _run_planned(planned, store, loaded, images, labels, on_progress, on_unit)
    except BaseException as error:
        log.error("stopped: %s: %s", type(error).__name__, error)
        raise
    finally:
        store.close()
        log.removeHandler(handler)
        handler.close()


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What one `run_sweep` call runs, checked before any victim or data loads."""

    config: SweepConfig
    all_units: list[Unit]
    units: list[Unit]  # this shard's (and --units')
    scope: str  # "i/n" (+ " units ...") for the log and the runs table
    store_path: Path
    log_path: Path
    command: str
    reuse: list[Path]
    reuse_only: bool


def _plan_run(config: SweepConfig, store_path: str | os.PathLike, shard: tuple[int, int] | str,
              units: str | Sequence[int] | None, log_path: str | os.PathLike | None, command: str,
              reuse: Sequence[str | os.PathLike], reuse_only: bool) -> _Plan:
    shard = parse_shard(shard)
    numbers = parse_units(units)
    all_units = units_of(config, expand(config))
    store_path = Path(store_path)
    log_path = Path(log_path) if log_path else default_log_path(store_path)
    check_output_file(store_path, "sweep store")
    check_output_file(log_path, "sweep log")
    return _Plan(config=config, all_units=all_units, units=select_units(all_units, shard, numbers),
                 scope=f"{shard[0]}/{shard[1]}" + ("" if numbers is None else f" units {format_units(numbers)}"),
                 store_path=store_path, log_path=log_path, command=command,
                 reuse=_reuse_paths(reuse, reuse_only, store_path), reuse_only=reuse_only)


def _run_planned(plan: _Plan, store: Store, loaded: Mapping[str, Any], images: np.ndarray, labels: np.ndarray,
                 on_progress: Callable[[SweepProgress], None] | None,
                 on_unit: Callable[[Unit, int], None] | None) -> dict[str, Any]:
    """Registers the plan's cells, copies reusable units, runs the pending ones; the summary."""
    config, units = plan.config, plan.units
    started = time.time()
    store.initialize(config.to_json(), config.key())
    log.info("sweep %s: shard %s, %d of %d units, store %s, command %r", config.name, plan.scope,
             len(units), len(plan.all_units), plan.store_path, plan.command)
    log.info("config %s", canonical_json(config.to_json()))
    _register_cells(store, config, units, loaded)
    run_id = store.start_run("sweep", plan.command, shard=plan.scope, log=str(plan.log_path))
    pending, reused, done = _pending_units(store, units, plan.reuse)
    left_pending = len(pending) if plan.reuse_only else 0
    if plan.reuse_only:
        log.info("reuse only: %d units left pending", left_pending)
        pending = []
    progress, remaining_per_cell = _resumed_progress(units, done)
    if on_progress is not None:
        on_progress(progress)
    correct: dict[str, np.ndarray] = {}
    rows_written = 0
    for unit in pending:
        written = _run_unit(store, config, unit, loaded[unit.cell.victim], images, labels, correct,
                            progress, remaining_per_cell)
        rows_written += written
        if on_unit is not None:
            on_unit(unit, written)
        if on_progress is not None:
            on_progress(progress)
    store.finish_run(run_id)
    summary = {"units_total": len(units), "units_run": len(pending),
               "units_resumed": progress.units_resumed - reused, "units_reused": reused,
               "units_pending": left_pending,
               "rows_written": rows_written, "rows_in_store": store.count("results"),
               "cells_done": progress.cells_done, "cells_total": progress.cells_total,
               "wall_s": round(time.time() - started, 3), "store": str(plan.store_path), "log": str(plan.log_path)}
    log.info("finished: %s", json.dumps(summary))
    return summary


def _reuse_paths(reuse: Sequence[str | os.PathLike], reuse_only: bool, store_path: Path) -> list[Path]:
    paths = [Path(path) for path in reuse]
    if reuse_only and not paths:
        raise ValueError("--reuse-only copies from --reuse stores: give at least one --reuse STORE")
    for path in paths:
        if not path.is_file():
            raise ValueError(f"--reuse {path}: no such store")
        if path.resolve() == store_path.resolve():
            raise ValueError(f"--reuse {path} is the store itself")
    return paths


def _register_cells(store: Store, config: SweepConfig, units: Sequence[Unit], loaded: Mapping[str, Any]) -> None:
    """Registers the cells of `units` with their victims' names, weights and metadata."""
    units_per_cell = -(-config.images.count // config.chunk_images)
    for cell in {u.cell.position: u.cell for u in units}.values():
        victim = loaded[cell.victim]
        store.register_cell(cell.cell_id, cell.position, cell.victim, victim.name, victim_fingerprint(victim),
                            _metadata_summary(victim), cell.config(), units_per_cell)


def _pending_units(store: Store, units: Sequence[Unit],
                   reuse: Sequence[Path]) -> tuple[list[Unit], int, set[tuple[str, int]]]:
    """(units still to run, units copied from `reuse` stores, the store's done units)."""
    done = store.done_units()
    pending = [u for u in units if (u.cell.cell_id, u.chunk) not in done]
    reused = 0
    for path in reuse:
        count = _copy_units(path, store, pending)
        if count:
            log.info("reused %d units from %s", count, path)
        reused += count
    if reused:
        done = store.done_units()
        pending = [u for u in pending if (u.cell.cell_id, u.chunk) not in done]
    store.drop_partial_of_done_units()
    return pending, reused, done


def _resumed_progress(units: Sequence[Unit], done: set[tuple[str, int]]) -> tuple[SweepProgress, dict[str, int]]:
    """The progress at the start (units already in the store counted as done) and each
    cell's units left."""
    progress = SweepProgress(cells_total=len({u.cell.cell_id for u in units}), units_total=len(units),
                             images_total=sum(u.size for u in units))
    remaining_per_cell: dict[str, int] = {}
    for unit in units:
        remaining_per_cell[unit.cell.cell_id] = remaining_per_cell.get(unit.cell.cell_id, 0) + 1
    for unit in units:
        if (unit.cell.cell_id, unit.chunk) in done:
            _count_done(progress, remaining_per_cell, unit)
            progress.units_resumed += 1
    if progress.units_resumed:
        log.info("resuming: %d units already in the store", progress.units_resumed)
    return progress, remaining_per_cell


def _run_unit(store: Store, config: SweepConfig, unit: Unit, victim, images: np.ndarray, labels: np.ndarray,
              correct: dict[str, np.ndarray], progress: SweepProgress, remaining_per_cell: dict[str, int]) -> int:
    """Attacks one unit's images (resuming a stopped run's finished problems), commits its
    records in one transaction, updates the progress and logs it; returns rows written."""
    unit_started = time.time()
    _count_program((unit.cell.victim, unit.cell.attack.compile_key()))
    selected = np.arange(unit.start, unit.stop, dtype=np.int64)
    if config.images.correct_only:
        if unit.cell.victim not in correct:  # once per victim, over the whole image set
            correct[unit.cell.victim] = _correct_mask(victim, images, labels, config.images)
        chosen = selected[correct[unit.cell.victim][selected - config.images.start]]
    else:
        chosen = selected
    records: list[dict[str, Any]] = []
    earlier, earlier_s = store.partial(unit.cell.cell_id, unit.chunk)
    if len(chosen):
        records = _attack_unit(store, unit, victim, images, labels, chosen, earlier, earlier_s, unit_started)
    # The unit's attack time over every run that worked on it (a stopped run's until
    # its last saved problem).
    wall = earlier_s + time.time() - unit_started
    written = store.commit_unit(unit.cell.cell_id, unit.chunk, len(selected), chosen.tolist(), records, wall)
    successes = sum(bool(r["success"]) for r in records)
    _count_done(progress, remaining_per_cell, unit)
    progress.images_this_run += unit.size
    progress.problems_this_run += len(records)
    progress.successes_this_run += successes
    progress.last_unit = f"{unit.cell.describe()} images {unit.start}-{unit.stop - 1}"
    eta = progress.eta_s
    log.info("unit done: cell %s (%s) chunk %d images [%d, %d): %d attacked, %d rows, %d successes, "
             "%.2f s; sweep: %d/%d units, %d/%d cells, %.2f images/s, ETA %s", unit.cell.cell_id,
             unit.cell.describe(), unit.chunk, unit.start, unit.stop, len(chosen), written, successes,
             wall, progress.units_done, progress.units_total, progress.cells_done, progress.cells_total,
             progress.images_per_s, "-" if eta is None else f"{eta:.0f} s")
    return written


def _attack_unit(store: Store, unit: Unit, victim, images: np.ndarray, labels: np.ndarray, chosen: np.ndarray,
                 earlier: list[dict[str, Any]], earlier_s: float, unit_started: float) -> list[dict[str, Any]]:
    """The unit's records: the chosen images attacked, each finished problem saved to the
    store's partial results as it finishes, those a stopped run finished carried over."""
    cell_attack = unit.cell.attack
    targets = None
    if cell_attack.mode == "targeted" and cell_attack.targets == "random":
        targets = random_targets(cell_attack.seed, chosen, labels[chosen], num_classes(victim))
    if earlier:
        log.info("unit resumed: cell %s chunk %d: %d problems finished by a stopped run",
                 unit.cell.cell_id, unit.chunk, len(earlier))

    def save(batch):
        store.save_partial(unit.cell.cell_id, unit.chunk, batch, earlier_s + time.time() - unit_started)

    result = attack(victim, images[chosen], labels[chosen], cell_attack, targets=targets,
                    image_indices=chosen, on_finished=save, finished=earlier)
    return result.records


def _copy_units(path: Path, store: Store, pending: Sequence[Unit]) -> int:
    """Copies into `store` the units of `pending` that the store at `path` has finished
    for the same cell, victim weights (both stores' registered SHA-256) and images;
    returns how many."""
    ours = {cell["cell_id"]: cell["victim_sha256"] for cell in store.cells()}
    with Store(path, read_only=True) as source:
        theirs = {cell["cell_id"]: cell["victim_sha256"] for cell in source.cells()}
        finished = {(u["cell_id"], u["chunk"]): u for u in source.units()}
        cell_records: dict[str, list[dict[str, Any]]] = {}
        copied = 0
        for unit in pending:
            cell_id = unit.cell.cell_id
            found = finished.get((cell_id, unit.chunk))
            if found is None or theirs.get(cell_id) != ours[cell_id]:
                continue
            attacked = set(found["attacked"])
            if found["n_selected"] != unit.size or not all(unit.start <= i < unit.stop for i in attacked):
                continue  # another chunking of the same images: run it here
            if cell_id not in cell_records:  # one read a cell, not one a unit
                cell_records[cell_id] = source.results(cell_id)
            records = [r for r in cell_records[cell_id] if r["image_index"] in attacked]
            store.commit_unit(cell_id, unit.chunk, found["n_selected"], found["attacked"], records, found["wall_s"])
            copied += 1
    return copied


def _count_done(progress: SweepProgress, remaining_per_cell: dict[str, int], unit: Unit) -> None:
    progress.units_done += 1
    progress.images_done += unit.size
    remaining_per_cell[unit.cell.cell_id] -= 1
    if remaining_per_cell[unit.cell.cell_id] == 0:
        progress.cells_done += 1


def _file_handler(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _load_victims(names: set[str], given: Mapping[str, Any] | None) -> dict[str, Any]:
    loaded = {}
    for name in sorted(names):
        if given is not None and name in given:
            loaded[name] = given[name]
            continue
        try:
            loaded[name] = loading.load_victim(name)
        except ValueError as error:  # CheckpointError is a ValueError
            raise ValueError(f"sweep key 'victims': {name!r} does not load: {error}") from None
    return loaded


def _load_split(images: ImageSet, given: Mapping[str, tuple[np.ndarray, np.ndarray]] | None):
    if given is not None and images.split in given:
        split_images, split_labels = given[images.split]
    else:
        split_images, split_labels = data.load_split(images.split)
    if images.start + images.count > len(split_labels):
        raise ValueError(f"sweep key 'images.count': images [{images.start}, {images.start + images.count}) "
                         f"do not fit split {images.split!r} of {len(split_labels)} images")
    return np.asarray(split_images), np.asarray(split_labels)


def _correct_mask(victim, images: np.ndarray, labels: np.ndarray, image_set: ImageSet) -> np.ndarray:
    span = slice(image_set.start, image_set.start + image_set.count)
    return np.asarray(correctly_classified(victim, images[span], labels[span]), bool)


def _metadata_summary(victim) -> dict[str, Any]:
    """What reports need from a victim's metadata (accuracy, parameters, training recipe)."""
    keep = ("model", "params", "test_accuracy", "test_images", "epochs_done", "sha256", "config")
    return {k: victim.metadata[k] for k in keep if k in victim.metadata}
