"""The CMA-ES search (AttackConfig(search="cma-es"), deattack.es.cma_es) through the attack's
slot runner: it finds the red-dot victim's weak pixel, charges exactly lambda per generation
plus the initial one, and gives the same records whatever the slot layout (as
test_invariance.py requires of DE)."""

import dataclasses

import numpy as np
import pytest

from deattack.attack import AttackConfig
from deattack.attack.searches import operator_name

from .red_dot import TARGETS, TRUE_CLASS, WEAK_CLASS, WEAK_X, WEAK_Y, grey_images

pytestmark = pytest.mark.allow_rank_promotion

# Targets 7 (reachable) and 5 (never): problems finish at different generations, and a
# failure spends the whole budget of 30 x (40 + 1) queries.
CMA_CONFIG = AttackConfig(pixels=1, mode="targeted", population_size=30, max_generations=40,
                          search="cma-es", seed=0)
LAYOUTS = {
    "slots=1": dataclasses.replace(CMA_CONFIG, slots=1, chunk_generations=3),
    "slots=2 refill": dataclasses.replace(CMA_CONFIG, slots=2, refill=True, chunk_generations=7),
}
FIELDS = ("success", "status", "queries", "generations", "pixels", "best_fitness",
          "adversarial_prediction", "true_label")


@pytest.fixture(scope="module")
def cma_layouts(red_dot_victim, run_attack):
    images, labels = grey_images(len(TARGETS)), np.full(len(TARGETS), TRUE_CLASS)
    return {name: run_attack(red_dot_victim, config, images, labels, targets=TARGETS)
            for name, config in LAYOUTS.items()}


def _by_problem(records):
    return {(r["image_index"], r["target"]): {f: r[f] for f in FIELDS} for r in records}


def test_cma_es_finds_the_weak_pixel(cma_layouts):
    records = cma_layouts["slots=1"].records
    reachable = [r for r in records if r["target"] == WEAK_CLASS]
    assert len(reachable) == 4
    for record in reachable:
        assert record["success"] and record["status"] == "success"  # re-verified by the runner
        (x, y, r, g, b), = record["pixels"]
        assert (x, y) == (WEAK_X, WEAK_Y) and r - g - b >= 243
        assert record["adversarial_prediction"] == WEAK_CLASS
    for record in records:
        if record["target"] != WEAK_CLASS:
            assert not record["success"] and record["status"] == "failed"


def test_queries_are_lambda_per_generation_plus_init(cma_layouts):
    for name, results in cma_layouts.items():
        for record in results.records:
            assert record["queries"] == CMA_CONFIG.population_size * (record["generations"] + 1), name
            if not record["success"]:
                assert record["generations"] == CMA_CONFIG.max_generations
                assert record["queries"] == CMA_CONFIG.max_queries == 30 * 41
        assert results.summary["queries_this_run"] == sum(r["queries"] for r in results.records), name
    solved = {r["generations"] for r in cma_layouts["slots=1"].records if r["success"]}
    assert len(solved) > 1 and max(solved) < CMA_CONFIG.max_generations  # early stop, at different times


def test_layouts_give_identical_records(cma_layouts):
    reference = _by_problem(cma_layouts["slots=1"].records)
    assert sorted(reference) == sorted(zip(range(len(TARGETS)), TARGETS.tolist()))
    assert {r["success"] for r in reference.values()} == {True, False}
    for name, results in cma_layouts.items():
        assert _by_problem(results.records) == reference, name


@pytest.mark.parametrize("field, value", [
    ("mutation", "best/1"), ("crossover", "bin"), ("adaptation", "jade"),
    ("differential_weight", 0.7), ("crossover_rate", 0.5), ("init", "corners"),
])
def test_de_settings_with_cma_es_are_refused(field, value):
    with pytest.raises(ValueError, match=f"search='cma-es' has no {field}"):
        AttackConfig(search="cma-es", **{field: value})


def test_bad_cma_es_settings_name_the_field():
    with pytest.raises(ValueError, match="population_size"):
        AttackConfig(search="cma-es", population_size=1)
    with pytest.raises(ValueError, match="search"):
        AttackConfig(search="cmaes")
    with pytest.raises(ValueError, match="coordinate_bounds"):
        AttackConfig(search="cma-es", coordinate_bounds="wrap")


def test_budget_and_labels():
    config = AttackConfig(search="cma-es")
    assert config.max_queries == 400 * 101  # DE's budget at the same population
    assert config.search_config().population_size == 400 and config.search_config().num_dims == 5
    assert config.search_config().bounds_per_dim == ("reflect", "reflect", "clip", "clip", "clip")
    assert operator_name(dataclasses.asdict(config)) == "cma-es"
    assert "search" in config.search_key() and "search" not in AttackConfig().search_key()


def test_operator_study_runs_cma_es_at_the_papers_budget():
    from deattack import config_files
    from deattack.sweep.grid import expand

    cells = [c for c in expand(config_files.load("configs/operators.py:screen")) if c.attack.search == "cma-es"]
    assert sorted(c.attack.pixels for c in cells) == [1, 3]
    for cell in cells:
        assert cell.attack.max_queries == 400 * 101
        assert operator_name(dataclasses.asdict(cell.attack)) == "cma-es"
