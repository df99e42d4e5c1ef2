"""A sweep: a grid of attack settings x victims over one image set, run as resumable,
shardable units into a SQLite results store (deattack.store).

    config = SweepConfig(victims=("lenet",), pixels=(1, 3, 5), modes=("untargeted", "targeted"))
    cells = expand(config)         # victims x pixels x modes x mutations x crossovers x adaptations x seeds
    run_sweep(config, "runs/sweep/x.sqlite", shard=(0, 2))   # half the units; rerun resumes

A unit is (cell, chunk of `chunk_images` consecutive images of the image set); it is
one batched `attack()` call and one store transaction. Problems of a unit are saved as
they finish (the store's `partial_results`), so a run stopped inside a long unit resumes
it without attacking them again. The unit list depends on the
config alone (not on the victims' predictions), so `--shard i/n` (unit u goes to shard
u mod n) splits the same work the same way in every job, and the shards' stores merge
into exactly the unsharded store (`deattack.store.merge`).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack.attack.config import FIELDS_ADDED_LATER, AttackConfig
from deattack.io_checks import check_output_file
from deattack.store import Store, StoreError, canonical_json

# Grid keys of a SweepConfig, in expansion order (the first varies slowest), and the
# AttackConfig field each one sets.
GRID_KEYS: dict[str, str] = {
    "victims": "",
    "pixels": "pixels",
    "modes": "mode",
    "mutations": "mutation",
    "crossovers": "crossover",
    "adaptations": "adaptation",
    "seeds": "seed",
}
# Fields of AttackConfig that do not change results (how problems are laid out on the device,
# and "forward": incremental scoring differs from the full forward by float rounding only).
LAYOUT_FIELDS = ("slots", "chunk_generations", "microbatch", "refill", "forward")
# Targeted "random" in a sweep: each image's target comes from its own stream
# default_rng([seed, image_index]), so it does not depend on which other images share its
# attack() call (deattack.attack.runner.build_problems draws targets in batch order).
RANDOM_TARGET_RULE = "numpy default_rng([seed, image_index]).integers(C - 1), skipping the label"

log = logging.getLogger("deattack.sweep")
log.propagate = False  # a run logs to its own file (next to the store); the CLI prints progress


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """The images every cell attacks: `count` consecutive images of `split` from `start`.

    Attributes:
      correct_only: attack only the images the cell's victim classifies correctly (as the
        papers do); the others are counted (units.n_selected) but not attacked.
    """

    split: str = "test"
    start: int = 0
    count: int = 100
    correct_only: bool = True

    def __post_init__(self):
        from deattack.data import SPLITS

        if self.split not in SPLITS:
            raise ValueError(f"images.split={self.split!r} is unknown; known: {', '.join(SPLITS)}")
        for field in ("start", "count"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if field == "start" else 1):
                raise ValueError(f"images.{field} must be an integer >= {0 if field == 'start' else 1}, "
                                 f"got {value!r}")
        if not isinstance(self.correct_only, bool):
            raise ValueError(f"images.correct_only must be True or False, got {self.correct_only!r}")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A grid of attacks. Every combination of the grid keys is one cell.

    Attributes:
      name: a label for logs and reports.
      victims: shipped victim names ("lenet", "resnet20") or checkpoint paths.
      pixels, modes, mutations, crossovers, adaptations, seeds: grid values of the
        AttackConfig fields pixels, mode, mutation, crossover, adaptation, seed.
      images: the image set (deattack.sweep.ImageSet).
      attack: every other AttackConfig field, shared by all cells (population_size,
        max_generations, targets "all"/"random", differential_weight, ...). Its grid
        fields must stay at their defaults: the grid sets them.
      chunk_images: images per unit (one attack() call, one store commit; finished
        problems are saved before it, so a kill costs only those in flight).
      variants: optional explicit list of operator settings, replacing the product
        mutations x crossovers x adaptations (which must then stay at their defaults):
        each variant is a tuple of (AttackConfig field, value) pairs applied to
        `attack`, e.g. (("mutation", "rand/1"), ("crossover", "bin")), or
        (("search", "exhaustive"),). The grid is then victims x pixels x modes x
        variants x seeds. A variant that sets a grid field (pixels, mode, seed) is
        restricted to that grid value (the 1-pixel-only exhaustive search at
        pixels=(1, 3) gives one cell, at 1 pixel; at pixels=(3,) none).
    """

    name: str = "sweep"
    victims: tuple[str, ...] = ("resnet20",)
    pixels: tuple[int, ...] = (1,)
    modes: tuple[str, ...] = ("untargeted",)
    mutations: tuple[str, ...] = ("rand/1",)
    crossovers: tuple[str, ...] = ("none",)
    adaptations: tuple[str, ...] = ("constant",)
    seeds: tuple[int, ...] = (0,)
    images: ImageSet = ImageSet()
    attack: AttackConfig = AttackConfig()
    chunk_images: int = 16
    variants: tuple[tuple[tuple[str, Any], ...], ...] = ()

    def __post_init__(self):
        for key, field in GRID_KEYS.items():
            values = _as_tuple(getattr(self, key))
            object.__setattr__(self, key, values)
            if not values:
                raise ValueError(f"sweep key {key!r} is empty: the grid would have no cells")
            if len(set(values)) != len(values):
                raise ValueError(f"sweep key {key!r} repeats a value: {values!r}")
            for value in values:
                if key == "victims":
                    if not isinstance(value, str) or not value:
                        raise ValueError(f"sweep key 'victims': {value!r} is not a victim name or path")
                    continue
                try:
                    dataclasses.replace(self.attack, **{field: value})
                except (ValueError, TypeError) as error:
                    raise ValueError(f"sweep key {key!r}: value {value!r} is invalid: {error}") from None
        if not isinstance(self.images, ImageSet):
            raise ValueError(f"sweep key 'images' must be an ImageSet, got {type(self.images).__name__}")
        if not isinstance(self.attack, AttackConfig):
            raise ValueError(f"sweep key 'attack' must be an AttackConfig, got {type(self.attack).__name__}")
        defaults = AttackConfig()
        for key, field in GRID_KEYS.items():
            if field and getattr(self.attack, field) != getattr(defaults, field):
                raise ValueError(f"sweep key 'attack.{field}' is set by the grid key {key!r}; "
                                 f"set {key}=... instead")
        if not isinstance(self.chunk_images, int) or self.chunk_images < 1:
            raise ValueError(f"sweep key 'chunk_images' must be an integer >= 1, got {self.chunk_images!r}")
        self._check_variants()
        for victim, fields in self._combinations():  # e.g. population too small for a mutation
            try:
                self._attack_config(fields)
            except ValueError as error:
                named = ", ".join(f"{k}={v!r}" for k, v in {"victim": victim, **fields}.items())
                raise ValueError(f"sweep cell ({named}) is invalid: {error}") from None

    def _check_variants(self) -> None:
        variants = tuple(tuple(tuple(pair) for pair in variant) for variant in self.variants)
        object.__setattr__(self, "variants", variants)
        if not variants:
            return
        for key in ("mutations", "crossovers", "adaptations"):
            if len(getattr(self, key)) > 1:
                raise ValueError(f"sweep key {key!r} has several values but 'variants' is set: "
                                 "put every operator setting in 'variants'")
        if len(set(variants)) != len(variants):
            raise ValueError("sweep key 'variants' repeats a variant")
        fields = {f.name for f in dataclasses.fields(AttackConfig)}
        for variant in variants:
            for pair in variant:
                if len(pair) != 2 or pair[0] not in fields:
                    raise ValueError(f"sweep key 'variants': {pair!r} is not a (field, value) pair of an "
                                     f"AttackConfig field; known fields: {', '.join(sorted(fields))}")
            names = [name for name, _ in variant]
            if len(set(names)) != len(names):
                raise ValueError(f"sweep key 'variants': {variant!r} sets a field twice")
        if not any(True for _ in self._combinations()):
            raise ValueError("sweep key 'variants': every variant is restricted to grid values the grid "
                             "does not contain, so the sweep has no cells")

    def _combinations(self):
        """(victim, AttackConfig fields) of every cell, in grid order."""
        if not self.variants:
            for combination in itertools.product(*(getattr(self, key) for key in GRID_KEYS)):
                yield combination[0], {GRID_KEYS[k]: v for k, v in zip(GRID_KEYS, combination) if GRID_KEYS[k]}
            return
        for victim, pixels, mode, variant, seed in itertools.product(
                self.victims, self.pixels, self.modes, self.variants, self.seeds):
            grid = {"pixels": pixels, "mode": mode, "seed": seed}
            settings = dict(variant)
            if any(settings.get(name, value) != value for name, value in grid.items()):
                continue  # the variant is restricted to another grid value
            yield victim, {**grid, **settings}

    def _attack_config(self, fields: dict[str, Any]) -> AttackConfig:
        return dataclasses.replace(self.attack, **fields)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def key(self) -> dict[str, Any]:
        """What must match for two stores to hold the same sweep: all but the name and
        the attack's device layout (slots, chunking), which do not change results."""
        data = self.to_json()
        data.pop("name")
        if not data["variants"]:  # sweeps written before variants existed keep their key
            data.pop("variants")
        data["attack"] = {k: v for k, v in data["attack"].items() if k not in LAYOUT_FIELDS
                          and not (k in FIELDS_ADDED_LATER and v == FIELDS_ADDED_LATER[k])}
        data["random_targets"] = RANDOM_TARGET_RULE
        return data


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, str):  # "--set modes=untargeted,targeted"
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


@dataclasses.dataclass(frozen=True)
class Cell:
    """One grid point: a victim, a resolved AttackConfig, the image set."""

    position: int
    victim: str
    attack: AttackConfig
    images: ImageSet

    def config(self) -> dict[str, Any]:
        """The resolved config stored in `cells.config` (its results-relevant part is hashed)."""
        return {"victim": self.victim, "attack": dataclasses.asdict(self.attack),
                "images": dataclasses.asdict(self.images)}

    @property
    def cell_id(self) -> str:
        """Stable hash of what changes results: victim, attack search key, image set."""
        key = {"victim": self.victim, "attack": self.attack.search_key(),
               "images": dataclasses.asdict(self.images)}
        if self.attack.mode == "targeted" and self.attack.targets == "random":
            key["random_targets"] = RANDOM_TARGET_RULE
        return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]

    def describe(self) -> str:
        a = self.attack
        operator = f"{a.mutation}+{a.crossover}+{a.adaptation}" if a.search == "de" else a.search
        start = "" if a.init == "paper" else f" init {a.init}"
        return f"{self.victim} {a.pixels}px {a.mode} {operator}{start} seed {a.seed}"


@dataclasses.dataclass(frozen=True)
class Unit:
    """Cell x chunk: images [start, stop) of the split; one attack() call, one commit."""

    cell: Cell
    chunk: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def expand(config: SweepConfig) -> list[Cell]:
    """The grid's cells, in a fixed order: victims, pixels, modes, mutations, crossovers,
    adaptations, seeds (the first varies slowest); with `variants`: victims, pixels,
    modes, variants, seeds."""
    return [Cell(position, victim, config._attack_config(fields), config.images)
            for position, (victim, fields) in enumerate(config._combinations())]


def units_of(config: SweepConfig, cells: Sequence[Cell] | None = None) -> list[Unit]:
    """All units of the sweep, cell-major, chunks in image order."""
    cells = expand(config) if cells is None else cells
    first, count, size = config.images.start, config.images.count, config.chunk_images
    return [Unit(cell, chunk, first + offset, first + min(offset + size, count))
            for cell in cells for chunk, offset in enumerate(range(0, count, size))]


def unit_number(cell_position: int, chunk: int, units_per_cell: int) -> int:
    """A unit's number, its index in units_of (cell-major, every cell with the same
    chunks): what `deattack sweep --units` takes and `--plan` lists."""
    return cell_position * units_per_cell + chunk


def parse_shard(text: str | tuple[int, int]) -> tuple[int, int]:
    """"i/n" (0 <= i < n) -> (i, n)."""
    if isinstance(text, tuple):
        index, count = text
    else:
        try:
            index_text, count_text = str(text).split("/")
            index, count = int(index_text), int(count_text)
        except ValueError:
            raise ValueError(f"shard must be i/n with integers 0 <= i < n, got {text!r}") from None
    if not (count >= 1 and 0 <= index < count):
        raise ValueError(f"shard must be i/n with integers 0 <= i < n, got {index}/{count}")
    return index, count


def shard_units(units: Sequence[Unit], shard: tuple[int, int]) -> list[Unit]:
    """Unit u goes to shard u mod n: n shards cover every unit exactly once, and each
    shard gets a share of every cell (balanced when cells differ in cost)."""
    return select_units(units, shard)


def parse_units(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """"48-50,24" -> (24, 48, 49, 50): unit numbers as `deattack sweep --plan` lists
    them (a unit's position in units_of); None selects every unit."""
    if text is None:
        return None
    if not isinstance(text, str):
        numbers = [int(number) for number in text]
    else:
        numbers = []
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            try:
                low, high = int(first), int(last if dash else first)
            except ValueError:
                raise ValueError(f"units must be numbers and ranges like 48-50,24, got {text!r}") from None
            if high < low:
                raise ValueError(f"units: the range {part.strip()!r} runs backwards")
            numbers.extend(range(low, high + 1))
    if not numbers or min(numbers) < 0:
        raise ValueError(f"units must be numbers >= 0, got {text!r}")
    return tuple(sorted(set(numbers)))


def format_units(numbers: Sequence[int]) -> str:
    """(24, 48, 49, 50) -> "24,48-50": parse_units' inverse."""
    parts: list[str] = []
    for _, group in itertools.groupby(enumerate(sorted(numbers)), lambda pair: pair[1] - pair[0]):
        run = [number for _, number in group]
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def select_units(units: Sequence[Unit], shard: tuple[int, int] | str = (0, 1),
                 numbers: Sequence[int] | None = None) -> list[Unit]:
    """The units of `shard` (unit u where u mod n == i) among `numbers` (all when None).

    Raises:
      ValueError: a number past the sweep's last unit (the message gives the count).
    """
    index, count = parse_shard(shard)
    chosen = set(range(len(units))) if numbers is None else set(numbers)
    beyond = sorted(number for number in chosen if number >= len(units))
    if beyond:
        raise ValueError(f"units {beyond} do not exist: the sweep has {len(units)} units, numbered "
                         f"0-{len(units) - 1} (deattack sweep CONFIG --plan lists them)")
    return [unit for number, unit in enumerate(units) if number % count == index and number in chosen]


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


def random_targets(seed: int, image_indices: Sequence[int], labels: Sequence[int],
                   num_classes: int) -> np.ndarray:
    """One random class other than the label for each image, from its own stream
    (RANDOM_TARGET_RULE), so a target does not depend on the chunking."""
    targets = []
    for index, label in zip(image_indices, labels):
        choice = int(np.random.default_rng([int(seed), int(index)]).integers(num_classes - 1))
        targets.append(choice + (choice >= int(label)))
    return np.asarray(targets, np.int64)


def victim_fingerprint(victim) -> str:
    """The checkpoint's sha256 when it has one, else a sha256 of the weights' bytes."""
    recorded = victim.metadata.get("sha256")
    if recorded:
        return str(recorded)
    import jax

    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(victim.variables)[0]:
        array = np.asarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return "weights:" + digest.hexdigest()


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
      victims: optional name -> deattack.victim.Victim, used instead of loading those names.
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
    from deattack.attack.api import attack

    shard = parse_shard(shard)
    numbers = parse_units(units)
    cells = expand(config)
    all_units = units_of(config, cells)
    units = select_units(all_units, shard, numbers)
    scope = f"{shard[0]}/{shard[1]}" + ("" if numbers is None else f" units {format_units(numbers)}")
    store_path = Path(store_path)
    log_path = Path(log_path) if log_path else default_log_path(store_path)
    check_output_file(store_path, "sweep store")  # before any victim or data loads
    check_output_file(log_path, "sweep log")
    reuse = [Path(path) for path in reuse]
    if reuse_only and not reuse:
        raise ValueError("--reuse-only copies from --reuse stores: give at least one --reuse STORE")
    for path in reuse:
        if not path.is_file():
            raise ValueError(f"--reuse {path}: no such store")
        if path.resolve() == store_path.resolve():
            raise ValueError(f"--reuse {path} is the store itself")
    loaded = _load_victims({u.cell.victim for u in units}, victims)
    split_data = _load_split(config.images, datasets)
    store = Store(store_path)
    handler = _file_handler(log_path)
    started = time.time()
    try:
        store.initialize(config.to_json(), config.key())
        log.info("sweep %s: shard %s, %d of %d units, store %s, command %r", config.name, scope,
                 len(units), len(all_units), store_path, command)
        log.info("config %s", canonical_json(config.to_json()))
        done = store.done_units()
        pending = [u for u in units if (u.cell.cell_id, u.chunk) not in done]
        units_per_cell = -(-config.images.count // config.chunk_images)
        for cell in {u.cell.position: u.cell for u in units}.values():
            victim = loaded[cell.victim]
            store.register_cell(cell.cell_id, cell.position, cell.victim, victim.name, victim_fingerprint(victim),
                                _metadata_summary(victim), cell.config(), units_per_cell)
        run_id = store.start_run("sweep", command, shard=scope, log=str(log_path))
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
        left_pending = len(pending) if reuse_only else 0
        if reuse_only:
            log.info("reuse only: %d units left pending", left_pending)
            pending = []

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
        if on_progress is not None:
            on_progress(progress)

        images, labels = split_data
        correct: dict[str, np.ndarray] = {}
        rows_written = 0
        for unit in pending:
            unit_started = time.time()
            _count_program((unit.cell.victim, unit.cell.attack.compile_key()))
            victim = loaded[unit.cell.victim]
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
                cell_attack = unit.cell.attack
                targets = None
                if cell_attack.mode == "targeted" and cell_attack.targets == "random":
                    targets = random_targets(cell_attack.seed, chosen, labels[chosen], _num_classes(victim))
                if earlier:
                    log.info("unit resumed: cell %s chunk %d: %d problems finished by a stopped run",
                             unit.cell.cell_id, unit.chunk, len(earlier))

                def save(batch, unit=unit, since=unit_started, before=earlier_s):
                    store.save_partial(unit.cell.cell_id, unit.chunk, batch, before + time.time() - since)

                result = attack(victim, images[chosen], labels[chosen], cell_attack, targets=targets,
                                image_indices=chosen, on_finished=save, finished=earlier)
                records = result.records
            # The unit's attack time over every run that worked on it (a stopped run's until
            # its last saved problem).
            wall = earlier_s + time.time() - unit_started
            written = store.commit_unit(unit.cell.cell_id, unit.chunk, len(selected), chosen.tolist(), records,
                                        wall)
            rows_written += written
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
                   "wall_s": round(time.time() - started, 3), "store": str(store_path), "log": str(log_path)}
        log.info("finished: %s", json.dumps(summary))
        return summary
    except BaseException as error:
        log.error("stopped: %s: %s", type(error).__name__, error)
        raise
    finally:
        store.close()
        log.removeHandler(handler)
        handler.close()


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


# Each attack config compiles its own programs, and on CPU a program holds a few hundred
# memory mappings (~400 for a small attack, ~1,300 for an operator-screen cell) for as
# long as it is cached. A process that kept every one reached Linux's default
# vm.max_map_count (65,530) after 49 cells of the operator screen and died inside LLVM
# ("Cannot allocate memory", then a segfault). So the sweep keeps the programs of at
# most PROGRAMS_KEPT attack configs per process and drops them all when one more comes;
# cells that differ only in seed, F or CR share one (AttackConfig.compile_key).
PROGRAMS_KEPT = 8
_programs_compiled: set = set()


def _count_program(program: tuple) -> None:
    if program in _programs_compiled:
        return
    if len(_programs_compiled) >= PROGRAMS_KEPT:
        release_compiled()
    _programs_compiled.add(program)


def release_compiled() -> None:
    """Drops every compiled program of the process (jax.clear_caches) and frees them."""
    import jax

    jax.clear_caches()
    gc.collect()
    _programs_compiled.clear()


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
    from deattack.victim import load_victim

    loaded = {}
    for name in sorted(names):
        if given is not None and name in given:
            loaded[name] = given[name]
            continue
        try:
            loaded[name] = load_victim(name)
        except ValueError as error:  # CheckpointError is a ValueError
            raise ValueError(f"sweep key 'victims': {name!r} does not load: {error}") from None
    return loaded


def _load_split(images: ImageSet, given: Mapping[str, tuple[np.ndarray, np.ndarray]] | None):
    from deattack import data

    if given is not None and images.split in given:
        split_images, split_labels = given[images.split]
    else:
        split_images, split_labels = data.load_split(images.split)
    if images.start + images.count > len(split_labels):
        raise ValueError(f"sweep key 'images.count': images [{images.start}, {images.start + images.count}) "
                         f"do not fit split {images.split!r} of {len(split_labels)} images")
    return np.asarray(split_images), np.asarray(split_labels)


def _correct_mask(victim, images: np.ndarray, labels: np.ndarray, image_set: ImageSet) -> np.ndarray:
    from deattack.victim import correctly_classified

    span = slice(image_set.start, image_set.start + image_set.count)
    return np.asarray(correctly_classified(victim, images[span], labels[span]), bool)


def _metadata_summary(victim) -> dict[str, Any]:
    """What reports need from a victim's metadata (accuracy, parameters, training recipe)."""
    keep = ("model", "params", "test_accuracy", "test_images", "epochs_done", "sha256", "config")
    return {k: victim.metadata[k] for k in keep if k in victim.metadata}


def _num_classes(victim) -> int:
    from deattack.victim import predict

    return int(predict(victim, np.zeros((1, 32, 32, 3), np.float32), batch_size=1).shape[-1])
