"""Attack configuration: static, hashable, validated up front (nothing runs on bad input)."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from deattack.attack import criteria, searches, sparse_rs
from deattack.attack.encoding import INITIALISATIONS
from deattack.de import ADAPTATIONS, BOUNDS, CROSSOVERS, MUTATIONS, DEConfig, DEParams
from deattack.es import cma_es

TARGET_CHOICES = ("all", "random")
# The search kinds (deattack.attack.searches: one entry each).
SEARCHES = tuple(searches.SEARCHES)
FORWARDS = ("full", "incremental")
# How the search scores candidates (AttackConfig.precision) -> the matmul precision its
# forward is traced at (jax.default_matmul_precision; None: the backend's default, what
# the search always ran at). "bf16" also casts weights and candidates to bfloat16
# (deattack.attack.fitness): XLA:CPU ignores the matmul precision, so that is its only
# bf16 arithmetic there. Verdicts never use it (deattack.victims.victim.JUDGEMENT_PRECISION).
PRECISIONS = {"default": None, "fp32": "highest", "tf32": "tensorfloat32", "bf16": "bfloat16"}
# Fields that never change results, only how the work is laid out on the device(s):
# search_key() and the sweep's keys leave them out, so a store or result folder resumes
# with other slots, chunking, microbatch, refill, device count or forward (the
# "incremental" forward differs from "full" by float rounding only). Tested in
# tests/attack/test_invariance.py and tests/sweep/test_grid.py.
LAYOUT_FIELDS = ("slots", "chunk_generations", "microbatch", "refill", "devices", "forward")
# The host-side part of the layout: compile_key() fixes these, so changing them reuses
# the compiled program (microbatch and forward change the program itself).
_HOST_LAYOUT = {"slots": 1, "chunk_generations": 1, "refill": True, "devices": 0}
# Fields added after stores and result folders were first written: left out of
# search_key() at these defaults, so those stores keep their keys and still resume.
FIELDS_ADDED_LATER = {"search": "de", "neighbour_radius": 0.0, "precision": "default"}


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """An L0 (few-pixel) DE attack.

    The defaults are the paper's setting (Su, Vargas & Sakurai, TEVC 2019):
    DE/rand/1, F = 0.5, no crossover, population 400, at most 100 generations.

    Attributes:
      pixels: K, pixels changed per image (>= 1).
      mode: "untargeted" or "targeted".
      targets: targeted only: "all" (each image x each other class is one
        problem, as in the paper), "random" (one random other class per image), or
        one class index for every image (images of that class are not attacked).
      fitness: "probability" (the paper's) or "margin".
      confidence: the adversarial class must also reach this probability, [0, 1).
      population_size, max_generations: P and the generation budget; an image costs
        at most P * (max_generations + 1) queries.
      mutation, crossover, adaptation: operator names in deattack.de's registries.
      differential_weight: F, (0, 2]; crossover_rate: CR, [0, 1].
      init: "paper" (x, y ~ U(0, 32), rgb ~ N(128, 127)), "uniform" or "corners" (rgb
        channels 0 or 255).
      coordinate_bounds, colour_bounds: DE bound handling of x/y and of r/g/b.
      slots: problems evolved together (device batch = slots x P candidates).
      chunk_generations: generations per jitted call; finished slots are refilled
        from the queue between calls (continuous batching).
      microbatch: candidate images per forward call inside the jitted step; 0 picks
        a size per backend.
      refill: continuous batching on (True) or fixed batches run to the end (False).
      devices: local devices the slots are spread over (0 = all); slots are rounded
        up to a multiple of it.
      forward: how candidates are scored: "full" (the victim's whole forward pass) or
        "incremental" (the clean image's first-convolution output plus a kernel-sized
        patch per changed pixel, then the rest of the network; deattack.attack.incremental:
        Flax victims whose first layer is a stride-1 convolution, equal to "full" up to
        float rounding; final images are always judged by the full forward). A layout
        choice like microbatch: the exhaustive corner scan always runs the full forward,
        so a sweep can set it for every cell.
      seed: root of every problem's PRNG stream.
      search: "de" (this attack), or "exhaustive" (1 pixel: all H x W locations x the
        8 colour-cube corners in a per-problem random order, stopping at the first
        success; deattack.attack.exhaustive), a baseline at a fixed budget, or "cma-es"
        (deattack.es.cma_es: lambda = population_size samples a generation, the same
        P * (max_generations + 1) budget and bound handling as DE; the DE-only fields
        mutation, crossover, adaptation, F, CR and init must stay at their defaults), or
        "sparse-rs" (deattack.attack.sparse_rs: Sparse-RS for L0, Croce et al. AAAI 2022,
        population_size proposals an iteration, 1 being the reference, max_generations
        iterations, the same budget; the DE-only fields and the bound handling stay at
        their defaults, neighbour_radius 0; chunk_generations about 100 suits it).
      neighbour_radius: 0 (the paper's attack: any colour), or r > 0: every candidate
        colour is clipped, per channel, to within r levels of the median of its
        location's 8 neighbours in the clean image (deattack.attack.confine), the search
        of an attacker who knows an outlier repair (`repair:threshold=T`: r = T keeps a
        lone pixel under its test); candidates are scored and recorded as clipped. DE
        and CMA-ES only (the corner scan's colours are fixed), [0, 255].
    """

    pixels: int = 1
    mode: str = "untargeted"
    targets: str | int = "all"
    fitness: str = "probability"
    confidence: float = 0.0
    population_size: int = 400
    max_generations: int = 100
    mutation: str = "rand/1"
    crossover: str = "none"
    adaptation: str = "constant"
    differential_weight: float = 0.5
    crossover_rate: float = 0.9
    init: str = "paper"
    coordinate_bounds: str = "reflect"
    colour_bounds: str = "clip"
    slots: int = 8
    chunk_generations: int = 10
    microbatch: int = 0
    refill: bool = True
    devices: int = 0
    seed: int = 0
    search: str = "de"
    forward: str = "full"
    neighbour_radius: float = 0.0
    precision: str = "default"

    def __post_init__(self):
        _check_types(self)

        def choice(field, known):
            value = getattr(self, field)
            if not isinstance(value, str) or value not in known:
                raise ValueError(f"{field}={value!r} is unknown; known: {', '.join(sorted(known))}")

        if not isinstance(self.pixels, int) or self.pixels < 1:
            raise ValueError(f"pixels must be an integer >= 1, got {self.pixels!r}")
        choice("mode", criteria.MODES)
        _check_targets(self.targets)
        choice("fitness", criteria.FITNESSES)
        choice("init", INITIALISATIONS)
        choice("mutation", MUTATIONS)
        choice("crossover", CROSSOVERS)
        choice("adaptation", ADAPTATIONS)
        choice("coordinate_bounds", BOUNDS)
        choice("colour_bounds", BOUNDS)
        choice("search", SEARCHES)
        choice("forward", FORWARDS)
        choice("precision", PRECISIONS)
        if self.precision == "bf16" and self.forward == "incremental":
            # Its patches are added to the clean stem in float32: not the bf16 forward asked for.
            raise ValueError("precision='bf16' scores with the full forward only; forward='incremental' "
                             "adds float32 patches to the clean image's first layer: use forward='full'")
        if not 0.0 <= self.neighbour_radius <= 255.0:
            raise ValueError(f"neighbour_radius must be in [0, 255] (0 = colours unconstrained), "
                             f"got {self.neighbour_radius}")
        self.search_entry.check(self)
        if not 0.0 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0, 1), got {self.confidence}")
        if self.max_generations < 0:
            raise ValueError(f"max_generations must be >= 0, got {self.max_generations}")
        for field in ("slots", "chunk_generations"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.devices < 0:
            raise ValueError(f"devices must be >= 0 (0 = all local devices), got {self.devices}")
        if self.microbatch < 0:
            raise ValueError(f"microbatch must be >= 0 (0 = automatic), got {self.microbatch}")
        if self.search_entry.static_config is not None:
            self.search_config()  # population size vs mutation, operator names
            self.search_params().validate()

    @property
    def num_dims(self) -> int:
        return 5 * self.pixels

    @property
    def search_entry(self) -> searches.Search:
        """This config's search in the registry (deattack.attack.searches)."""
        return searches.SEARCHES[self.search]

    @property
    def max_queries(self) -> int:
        """Budget per problem: the initial population plus one per generation (DE,
        CMA-ES), or every location x colour-cube corner (exhaustive, 32 x 32 images)."""
        return self.search_entry.budget(self.population_size, self.max_generations, 32, 32)

    def de_config(self) -> DEConfig:
        return searches.de_config(self)

    def search_config(self, image_shape: tuple[int, ...] = searches.DEFAULT_IMAGE_SHAPE
                      ) -> DEConfig | cma_es.CMAESConfig | sparse_rs.SparseRSConfig:
        """The optimiser's static config for images of `image_shape` (H, W, C): DE's, CMA-ES's
        for search="cma-es", Sparse-RS's (the only one that reads the shape) for "sparse-rs"."""
        return self.search_entry.static_config(self, tuple(image_shape))

    def search_params(self) -> DEParams | cma_es.CMAESParams | sparse_rs.SparseRSParams:
        """The optimiser's traced tunables (CMA-ES: sigma0 = 0.3 of the box width; Sparse-RS:
        none)."""
        return self.search_entry.params(self)

    def de_params(self) -> DEParams:
        return searches.de_params(self)

    def compile_key(self) -> "AttackConfig":
        """This config with the fields that need no recompilation (seed, F, CR, host-side
        layout) set to fixed values: the static argument of the jitted functions, so a
        new seed or F reuses the compiled program (F and CR travel in DEParams)."""
        return dataclasses.replace(self, seed=0, differential_weight=0.5, crossover_rate=0.9, **_HOST_LAYOUT)

    def search_key(self) -> dict:
        """Fields that change results: all but LAYOUT_FIELDS (and FIELDS_ADDED_LATER at
        their defaults, so older stores keep their keys)."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in LAYOUT_FIELDS and not (k in FIELDS_ADDED_LATER and v == FIELDS_ADDED_LATER[k])}


# Field -> (kind, least value). Checked before anything else, so a wrong type is a
# ValueError naming the field (not a TypeError from a comparison deep inside); numpy
# scalars are accepted and stored as Python numbers (they go into JSON and hashes).
_NUMERIC_FIELDS = {
    "pixels": (int, 1), "population_size": (int, 1), "max_generations": (int, 0), "slots": (int, 1),
    "chunk_generations": (int, 1), "microbatch": (int, 0), "devices": (int, 0), "seed": (int, 0),
    "confidence": (float, None), "differential_weight": (float, None), "crossover_rate": (float, None),
    "neighbour_radius": (float, None),
}
# The DE state counts generations and queries in int32; a problem's budget must fit.
_MAX_QUERIES = 2**31 - 1
# Every pixel of a 32 x 32 image; more could only repeat locations (and 5K genes each).
_MAX_PIXELS = 32 * 32


def _check_targets(targets: Any) -> None:
    """"all", "random" or a class index (its upper bound is the victim's, checked with it)."""
    if isinstance(targets, str) and targets in TARGET_CHOICES:
        return
    if isinstance(targets, numbers.Integral) and not isinstance(targets, (bool, np.bool_)) and targets >= 0:
        return
    raise ValueError(f"targets={targets!r} is unknown; known: all, random, or one class index >= 0 for "
                     "every image (the CLI also takes a class name)")


def _check_types(config: AttackConfig) -> None:
    for field, (kind, least) in _NUMERIC_FIELDS.items():
        value = getattr(config, field)
        if kind is int:
            if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{field} must be an integer >= {least}, got {value!r}")
            if value < least:
                raise ValueError(f"{field} must be an integer >= {least}, got {value!r}")
            object.__setattr__(config, field, int(value))
        else:
            if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{field} must be a number, got {value!r}")
            object.__setattr__(config, field, float(value))
    if not isinstance(config.refill, (bool, np.bool_)):
        raise ValueError(f"refill must be True or False, got {config.refill!r}")
    object.__setattr__(config, "refill", bool(config.refill))
    if config.pixels > _MAX_PIXELS:
        raise ValueError(f"pixels must be an integer in [1, {_MAX_PIXELS}] (the pixels of a 32 x 32 "
                         f"image), got {config.pixels}")
    if config.seed >= 2**32:  # jax.random.key(seed) keeps 32 bits: 2**32 would repeat seed 0
        raise ValueError(f"seed must be an integer in [0, 2**32), got {config.seed}")
    budget = config.population_size * (config.max_generations + 1)
    if budget > _MAX_QUERIES:
        raise ValueError(
            f"population_size x (max_generations + 1) = {budget} queries a problem exceeds the "
            f"int32 query counter ({_MAX_QUERIES}); lower population_size or max_generations")


def paper_config(pixels: int = 1, mode: str = "untargeted", **overrides) -> AttackConfig:
    """Su, Vargas & Sakurai (TEVC 2019): DE/rand/1, F = 0.5, no crossover, P = 400, 100 generations."""
    settings = dict(mutation="rand/1", crossover="none", adaptation="constant",
                    differential_weight=0.5, population_size=400, max_generations=100, init="paper")
    settings.update(overrides)
    return AttackConfig(pixels=pixels, mode=mode, **settings)


# The operator study's choices per setting (docs/results/operators_head_to_head_note.md).
_DESIGNED = {"mutation": "rand/1-snap-local", "init": "corners"}
_TARGETED_MANY_PIXELS = {"mutation": "best/1", "crossover": "exp"}  # CR 0.9, the study's


def recommended_config(pixels: int = 1, mode: str = "untargeted", **overrides) -> AttackConfig:
    """The paper's budget (P = 400, 100 generations, F = 0.5) with the operator the study
    chose for the setting:

    - untargeted, and targeted with fewer than 5 pixels: DE/rand/1 whose colours snap to
      the colour cube's corners and whose p-best members also move to neighbouring
      pixels ("rand/1-snap-local"), from corner colours;
    - targeted with 5 or more pixels: DE/best/1 with exponential crossover (CR 0.9).

    The evidence, with its commands: docs/results/operators_head_to_head_note.md.
    """
    operator = _TARGETED_MANY_PIXELS if mode == "targeted" and pixels >= 5 else _DESIGNED
    return paper_config(pixels, mode, **{**operator, **overrides})


# The settings one argument away from the default: `preset="su2019"` / `--preset su2019`.
PRESETS = ("su2019",)
# Fields that name a DE operator: asking for any of them (or for another search) starts
# from the paper's operator, replaced whole by the one asked for.
OPERATOR_FIELDS = ("mutation", "crossover", "adaptation", "init")


def default_config(pixels: int = 1, mode: str = "untargeted", *, preset: str | None = None,
                   **fields) -> AttackConfig:
    """The attack that `attack()` and `deattack attack` run when no config is given: ONE
    default for both, with `fields` set.

    No preset: recommended_config(pixels, mode), the operator study's choice at the
    paper's budget. preset="su2019": paper_config, the paper's DE/rand/1. Fields that
    name a DE operator (OPERATOR_FIELDS) or a search other than "de" start from the
    paper's setting either way: the operator asked for replaces the default one whole.
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is unknown; known: {', '.join(PRESETS)}")
    if preset == "su2019" or fields.keys() & set(OPERATOR_FIELDS) or fields.get("search", "de") != "de":
        return paper_config(pixels, mode, **fields)
    return recommended_config(pixels, mode, **fields)
