"""The search registry: what `AttackConfig.search` names.

A search is one `Search` entry in SEARCHES: how an AttackConfig becomes the
optimiser's static config and traced params, the query budget a problem may spend,
the config checks the search adds, and its display name. A generational optimiser
(`optimiser` = a module with init / run / active over B problems, as deattack.de,
deattack.es.cma_es and deattack.attack.sparse_rs) runs in the attack's device slots
(deattack.attack.runner); a search without one (the corner scan) brings its own runner
(deattack.attack.api picks it). Adding a search is one entry here, plus its optimiser or runner.

Entries read the config by attribute only, so this module sits below
deattack.attack.config (which validates a config against its entry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from deattack.attack import sparse_rs
from deattack.attack.encoding import bound_names, dim_kinds
from deattack.de import DEConfig, DEParams
from deattack.de import engine as de_engine
from deattack.es import cma_es

# The corner scan's candidates: every location x the 8 corners of the colour cube.
COLOUR_CORNERS = 8
# DE-only fields: a search without DE operators requires them at their defaults.
DE_ONLY_FIELDS = ("mutation", "crossover", "adaptation", "differential_weight", "crossover_rate", "init")
# The image shape a static config is built for when none is given (CIFAR-10's): the slots
# pass their images' own shape; validation and status reads use this one.
DEFAULT_IMAGE_SHAPE = (32, 32, 3)


@dataclasses.dataclass(frozen=True)
class Search:
    """One search kind.

    Attributes:
      name: the `AttackConfig.search` value.
      optimiser: module with init / run / active (batched, pure), or None for a search
        that runs through its own runner.
      static_config: (config, image_shape (H, W, C)) -> the optimiser's static (hashable)
        config; only a search over image positions (sparse-rs) reads the shape.
      params: config -> the optimiser's traced tunables.
      budget: (population_size, max_generations, height, width) -> queries a problem
        may spend at most.
      de_operators: the DE operator fields (mutation, crossover, adaptation, F, CR,
        init) apply; otherwise they must stay at their defaults.
      check: config -> None, raising ValueError for settings the search cannot run.
      label: its name in reports when it has no DE operators (default: `name`).
    """

    name: str
    optimiser: Any
    static_config: Callable[[Any, tuple[int, ...]], Any] | None
    params: Callable[[Any], Any] | None
    budget: Callable[[int, int, int, int], int]
    de_operators: bool
    check: Callable[[Any], None]
    label: str = ""


def generational_budget(population_size: int, max_generations: int, height: int, width: int) -> int:
    """The initial population plus one population a generation."""
    del height, width
    return population_size * (max_generations + 1)


def corner_budget(population_size: int, max_generations: int, height: int, width: int) -> int:
    """Every location x colour-cube corner."""
    del population_size, max_generations
    return height * width * COLOUR_CORNERS


def de_config(config, image_shape: tuple[int, ...] = DEFAULT_IMAGE_SHAPE) -> DEConfig:
    del image_shape  # the box (deattack.attack.encoding.box) carries the grid
    return DEConfig(
        population_size=config.population_size, num_dims=config.num_dims,
        mutation=config.mutation, crossover=config.crossover, adaptation=config.adaptation,
        bounds=bound_names(config.pixels, config.coordinate_bounds, config.colour_bounds),
        dim_kinds=dim_kinds(config.pixels), max_generations=config.max_generations)


def de_params(config) -> DEParams:
    return DEParams(differential_weight=float(config.differential_weight),
                    crossover_rate=float(config.crossover_rate))


def cma_es_config(config, image_shape: tuple[int, ...] = DEFAULT_IMAGE_SHAPE) -> cma_es.CMAESConfig:
    del image_shape
    return cma_es.CMAESConfig(
        population_size=config.population_size, num_dims=config.num_dims,
        bounds=bound_names(config.pixels, config.coordinate_bounds, config.colour_bounds),
        max_generations=config.max_generations)


def cma_es_params(config) -> cma_es.CMAESParams:
    del config  # sigma0 = 0.3 of the box width, CMA-ES's own default
    return cma_es.CMAESParams()


def sparse_rs_config(config, image_shape: tuple[int, ...] = DEFAULT_IMAGE_SHAPE) -> sparse_rs.SparseRSConfig:
    """P proposals an iteration, max_generations iterations, the reference's alpha_init
    for the mode (0.3 untargeted, 0.1 targeted)."""
    height, width = image_shape[:2]
    return sparse_rs.SparseRSConfig(
        population_size=config.population_size, pixels=config.pixels, height=height, width=width,
        max_generations=config.max_generations, alpha_init=sparse_rs.ALPHA_INIT[config.mode])


def sparse_rs_params(config) -> sparse_rs.SparseRSParams:
    del config
    return sparse_rs.SparseRSParams()


def _no_check(config) -> None:
    del config


def _check_corner_scan(config) -> None:
    if config.pixels != 1:
        raise ValueError(f"search='exhaustive' covers one pixel only, got pixels={config.pixels}")
    if config.neighbour_radius:
        raise ValueError("search='exhaustive' scans the colour cube's corners; it has no neighbour_radius")


def _require_defaults(config, fields: tuple[str, ...], reason: str) -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(type(config))}
    for field in fields:
        if getattr(config, field) != defaults[field]:
            raise ValueError(
                f"search={config.search!r} has no {field} ({reason}): leave {field} at {defaults[field]!r}, "
                f"got {getattr(config, field)!r}")


def check_de_fields_unset(config) -> None:
    """A search without DE operators: its DE-only fields stay at their defaults."""
    _require_defaults(config, DE_ONLY_FIELDS,
                      "a DE setting; CMA-ES samples its own adapted Gaussian from the box's centre")


def _check_sparse_rs(config) -> None:
    """Sparse-RS moves whole pixels between sets and draws corner colours: no DE operator,
    box repair or colour confinement applies."""
    _require_defaults(config, DE_ONLY_FIELDS + ("coordinate_bounds", "colour_bounds"),
                      "a DE / box setting; Sparse-RS swaps whole pixels and draws colour-cube corners")
    if config.neighbour_radius:
        raise ValueError("search='sparse-rs' draws colour-cube corners; it has no neighbour_radius")


SEARCHES: dict[str, Search] = {
    # Differential evolution (deattack.de): the paper's search and its variants.
    "de": Search("de", de_engine, de_config, de_params, generational_budget, True, _no_check),
    # CMA-ES (deattack.es.cma_es) at DE's budget, lambda = population_size.
    "cma-es": Search("cma-es", cma_es, cma_es_config, cma_es_params, generational_budget, False,
                     check_de_fields_unset),
    # Sparse-RS for L0 (deattack.attack.sparse_rs): random search over sets of K pixels,
    # P proposals an iteration (1 = the reference), DE's budget P x (max_generations + 1).
    "sparse-rs": Search("sparse-rs", sparse_rs, sparse_rs_config, sparse_rs_params, generational_budget, False,
                        _check_sparse_rs),
    # Every location x the 8 colour-cube corners of one pixel in a per-problem random
    # order, stopping at the first success (deattack.attack.exhaustive): a baseline.
    "exhaustive": Search("exhaustive", None, None, None, corner_budget, False, _check_corner_scan,
                         label="exhaustive-corners"),
}


def search_of(name: str) -> Search:
    if name not in SEARCHES:
        raise ValueError(f"search={name!r} is unknown; known: {', '.join(sorted(SEARCHES))}")
    return SEARCHES[name]


def max_queries(attack: Mapping[str, Any], height: int = 32, width: int = 32) -> int:
    """The budget of a stored attack config (a JSON dict; old ones have no `search`)."""
    search = search_of(attack.get("search", "de"))
    return search.budget(attack["population_size"], attack["max_generations"], height, width)


def operator_name(attack: Mapping[str, Any]) -> str:
    """A stored attack config's display name in reports: the search, or DE's operators
    as mutation/crossover/adaptation (+init-NAME when not the paper's initialisation)."""
    search = search_of(attack.get("search", "de"))
    if not search.de_operators:
        return search.label or search.name
    label = f"{attack['mutation']}/{attack['crossover']}/{attack['adaptation']}"
    init = attack.get("init", "paper")
    return label if init == "paper" else f"{label}+init-{init}"
