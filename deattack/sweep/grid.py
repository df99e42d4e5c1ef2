"""A sweep's grid: the config (SweepConfig, ImageSet), its cells (one attack setting on one
victim) and units (a cell's chunk of images, the resumable piece of work), and the
--shard / --units selections over them. Pure: nothing here runs or stores anything."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Sequence
from typing import Any

from deattack.attack.config import FIELDS_ADDED_LATER, LAYOUT_FIELDS, AttackConfig
from deattack.attack.targets import RANDOM_TARGET_RULE
from deattack.data import SPLITS
from deattack.sweep.store import canonical_json

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
        the attack's LAYOUT_FIELDS (deattack.attack.config), which do not change results.

        Stores compare keys without any LAYOUT_FIELDS (deattack.sweep.store); the key
        written keeps `devices` (_LAYOUT_KEPT_IN_SWEEP_KEYS) so every store's key stays
        byte for byte what it always was."""
        data = self.to_json()
        data.pop("name")
        if not data["variants"]:  # sweeps written before variants existed keep their key
            data.pop("variants")
        data["attack"] = {k: v for k, v in data["attack"].items()
                          if (k not in LAYOUT_FIELDS or k in _LAYOUT_KEPT_IN_SWEEP_KEYS)
                          and not (k in FIELDS_ADDED_LATER and v == FIELDS_ADDED_LATER[k])}
        data["random_targets"] = RANDOM_TARGET_RULE
        return data


# Sweep keys have always held the attack's `devices` (it was listed as layout after the
# first stores were written): kept in the written key, ignored when keys are compared.
_LAYOUT_KEPT_IN_SWEEP_KEYS = ("devices",)


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
        operator = f"{a.mutation}+{a.crossover}+{a.adaptation}" if a.search_entry.de_operators else a.search
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
