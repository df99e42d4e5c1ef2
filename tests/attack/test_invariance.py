"""Results depend on (seed, image index, target) only: not on slots, refill, batch order.

Each problem's PRNG stream is fold_in(seed, image index, target), so the same problem
must give the same record whatever layout runs it (STYLE.md section 6).
"""

import dataclasses

import jax
import numpy as np
import pytest

from deattack.attack import AttackConfig, attack
from deattack.attack import problems as problems_lib

from .red_dot import (
    BASE_CONFIG,
    LAYOUTS,
    NUM_CLASSES,
    NUM_WEAKNESS_IMAGES,
    TARGETED_CONFIG,
    TARGETS,
    TRUE_CLASS,
    WEAK_CLASS,
    grey_images,
)

pytestmark = pytest.mark.allow_rank_promotion

FIELDS = ("success", "status", "queries", "generations", "pixels", "best_fitness",
          "adversarial_prediction", "true_label")


def _by_problem(records):
    return {(r["image_index"], r["target"]): {f: r[f] for f in FIELDS} for r in records}


def test_layouts_give_identical_records(layout_results):
    reference = _by_problem(layout_results["slots=1"].records)
    assert sorted(reference) == sorted(zip(range(len(TARGETS)), TARGETS.tolist()))
    # The problems are not all alike, or the comparison would prove little.
    assert {r["success"] for r in reference.values()} == {True, False}
    assert len({r["generations"] for r in reference.values() if r["success"]}) > 1
    for record in reference.values():
        assert record["success"] == (record["adversarial_prediction"] == WEAK_CLASS)
    for name, results in layout_results.items():
        assert len(results.records) == len(TARGETS), name
        assert _by_problem(results.records) == reference, name


def test_queries_this_run_counts_every_problem_once(layout_results):
    # The host's running count, across refills, equals the sum of the records' queries.
    for name, results in layout_results.items():
        assert results.summary["queries_this_run"] == sum(r["queries"] for r in results.records), name


def test_failed_problems_spend_exactly_the_budget(layout_results):
    for record in layout_results["slots=2 refill"].records:
        if record["target"] == 5:
            assert not record["success"] and record["status"] == "failed"
            assert record["generations"] == TARGETED_CONFIG.max_generations
            assert record["queries"] == TARGETED_CONFIG.max_queries


def test_input_order_does_not_matter(red_dot_victim, layout_results):
    # The same problems given in reverse order (rows differ, global image indices match).
    order = np.arange(len(TARGETS))[::-1]
    results = attack(red_dot_victim, grey_images(len(TARGETS)), np.full(len(TARGETS), TRUE_CLASS),
                     LAYOUTS["slots=2 refill"], targets=TARGETS[order], image_indices=order)
    assert _by_problem(results.records) == _by_problem(layout_results["slots=2 refill"].records)


def test_same_seed_same_records(red_dot_victim, untargeted_run):
    again = attack(red_dot_victim, grey_images(NUM_WEAKNESS_IMAGES),
                   np.full(NUM_WEAKNESS_IMAGES, TRUE_CLASS), BASE_CONFIG)
    assert again.records == untargeted_run.records  # every field, in the same order


def test_different_seed_differs(red_dot_victim, untargeted_run):
    other = attack(red_dot_victim, grey_images(NUM_WEAKNESS_IMAGES),
                   np.full(NUM_WEAKNESS_IMAGES, TRUE_CLASS), dataclasses.replace(BASE_CONFIG, seed=1))
    assert all(other.success)  # still finds the weakness
    assert _by_problem(other.records) != _by_problem(untargeted_run.records)
    # And the streams really differ: not the same search path for most images.
    same = [a["generations"] == b["generations"] and a["pixels"] == b["pixels"]
            for a, b in zip(other.records, untargeted_run.records)]
    assert sum(same) < len(same)


def test_targeted_all_is_every_other_class(red_dot_victim):
    config = LAYOUTS["slots=1"]  # already compiled by the layout test
    assert config.targets == "all"
    labels = np.asarray([TRUE_CLASS])
    results = attack(red_dot_victim, grey_images(1), labels, config)
    records = results.records
    assert len(records) == NUM_CLASSES - 1
    assert sorted(r["target"] for r in records) == [t for t in range(NUM_CLASSES) if t != TRUE_CLASS]
    for record in records:
        assert record["target"] != record["true_label"] == TRUE_CLASS
        # Only class 7 can be reached on this victim.
        assert record["success"] == (record["target"] == WEAK_CLASS)
        if not record["success"]:
            assert record["queries"] == config.max_queries
    assert results.summary["n_images"] == 1 and results.summary["n_problems"] == NUM_CLASSES - 1


def test_targeted_all_problems_per_image():
    config = AttackConfig(mode="targeted", targets="all", population_size=16)
    labels = np.asarray([0, 3, 9])
    problems = problems_lib.build_problems(config, labels, np.asarray([5, 6, 7]), None, NUM_CLASSES)
    assert len(problems) == 3 * (NUM_CLASSES - 1)
    for row, label in enumerate(labels):
        mine = [p for p in problems if p.row == row]
        assert sorted(p.target for p in mine) == sorted(set(range(NUM_CLASSES)) - {label})
        assert {p.image_index for p in mine} == {5 + row}


def test_targeted_random_picks_one_other_class_per_image():
    config = AttackConfig(mode="targeted", targets="random", population_size=16, seed=3)
    labels = np.arange(200) % NUM_CLASSES
    problems = problems_lib.build_problems(config, labels, np.arange(200), None, NUM_CLASSES)
    assert len(problems) == 200
    targets = np.asarray([p.target for p in problems])
    assert np.all(targets != labels) and np.all((targets >= 0) & (targets < NUM_CLASSES))
    assert set(targets.tolist()) == set(range(NUM_CLASSES))  # every class gets used
    again = problems_lib.build_problems(config, labels, np.arange(200), None, NUM_CLASSES)
    assert [p.target for p in again] == targets.tolist()


def test_problem_keys_depend_on_image_index_and_target_only():
    keys = problems_lib.problem_keys(0, [4, 4, 5, 4], [-1, 7, -1, -1])
    data = [tuple(np.asarray(jax.random.key_data(k)).tolist()) for k in keys]
    assert data[0] == data[3] and len({data[0], data[1], data[2]}) == 3
