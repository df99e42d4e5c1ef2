"""The exhaustive corner scan (deattack.attack.exhaustive) finds the red-dot victim's
weakness, pure red (255, 0, 0) at (x=12, y=20), the only fooling corner pixel, and
counts queries exactly: 8,192 for a full scan, the weak candidate's position in the
problem's scan order + 1 when it stops early."""

import itertools

import numpy as np
import pytest

from deattack.attack import AttackConfig
from deattack.attack.encoding import decode
from deattack.attack.exhaustive import CHUNK, ExhaustiveRunner, corner_candidates, scan_order
from deattack.attack.problems import build_problems
from deattack.victims.victim import predict

from .red_dot import TRUE_CLASS, WEAK_CLASS, WEAK_X, WEAK_Y, grey_images

pytestmark = pytest.mark.allow_rank_promotion

TOTAL = 32 * 32 * 8
CONFIG = AttackConfig(search="exhaustive", slots=2, seed=3)


def _weak_position(image_index: int, target: int) -> int:
    """Position of (12, 20, pure red) in the problem's scan order, computed independently:
    raster index (y * 32 + x) * 8 + corner, corners in itertools.product order."""
    corner = list(itertools.product((0, 255), repeat=3)).index((255, 0, 0))
    raster = (WEAK_Y * 32 + WEAK_X) * 8 + corner
    order = np.random.default_rng([CONFIG.seed, image_index, target + 1]).permutation(TOTAL)
    return int(np.flatnonzero(order == raster)[0])


def test_candidates_cover_every_location_and_corner_once():
    genes = corner_candidates()
    assert genes.shape == (TOTAL, 5)
    columns_rows, colours = (np.asarray(a) for a in decode(genes))
    pixels = {(x, y, *map(int, c)) for (x, y), c in zip(columns_rows.reshape(-1, 2), colours.reshape(-1, 3))}
    expected = {(x, y, *c) for y in range(32) for x in range(32)
                for c in itertools.product((0, 255), repeat=3)}
    assert pixels == expected
    np.testing.assert_array_equal(np.sort(scan_order(0, 5, -1, TOTAL)), np.arange(TOTAL))


def test_full_scan_finds_the_only_fooling_corner_pixel(red_dot_victim):
    images = grey_images(2).astype(np.float32)
    labels = np.full(2, TRUE_CLASS)
    config = AttackConfig(search="exhaustive", slots=2, seed=3)
    problems = build_problems(config, labels, np.array([0, 1]), None, 10)
    logits = predict(red_dot_victim, images, batch_size=2)
    runner = ExhaustiveRunner(config, red_dot_victim.apply_fn, red_dot_victim.variables, images,
                              lambda batch: predict(red_dot_victim, batch, batch_size=len(batch)), logits,
                              stop_early=False)
    seen = []  # (spent, left) before the scan and after each batch of slots
    records, progress = runner.run(problems, on_progress=lambda p: seen.append((p.queries, p.queries_left)))
    assert seen == [(0, 2 * TOTAL), (2 * TOTAL, 0)]
    assert len(records) == 2
    for record in records:
        assert record["success"] and record["status"] == "success", record
        assert record["pixels"] == [[WEAK_X, WEAK_Y, 255, 0, 0]]
        assert record["adversarial_prediction"] == WEAK_CLASS
        assert record["queries"] == record["queries_evaluated"] == TOTAL
        assert record["n_fooling"] == 1
        assert record["first_success_query"] == _weak_position(record["image_index"], -1) + 1
    assert progress.queries == 2 * TOTAL


def test_early_stop_charges_the_position_of_the_first_success(red_dot_victim, run_attack):
    """Targeted: class 7 is reachable (by the weak pixel only), class 5 never."""
    images = grey_images(3)
    targets = np.array([WEAK_CLASS, 5, WEAK_CLASS])
    results = run_attack(red_dot_victim, AttackConfig(search="exhaustive", mode="targeted", slots=4, seed=3),
                         images, np.full(3, TRUE_CLASS), targets=targets, image_indices=[10, 11, 12])
    by_image = {r["image_index"]: r for r in results.records}
    for index in (10, 12):
        record = by_image[index]
        position = _weak_position(index, WEAK_CLASS)
        assert record["success"] and record["pixels"] == [[WEAK_X, WEAK_Y, 255, 0, 0]]
        assert record["queries"] == record["first_success_query"] == position + 1
        # The whole chunk holding the success was evaluated, nothing after it.
        assert record["queries_evaluated"] == (position // CHUNK + 1) * CHUNK
        assert record["n_fooling"] is None
    failed = by_image[11]
    assert not failed["success"] and failed["status"] == "failed"
    assert failed["queries"] == failed["queries_evaluated"] == TOTAL
    assert failed["first_success_query"] is None
    assert results.summary["queries_this_run"] == sum(r["queries"] for r in results.records)


def test_the_scan_runs_the_full_forward_whatever_forward_says(red_dot_victim, run_attack):
    """forward is a layout choice a sweep sets for all its cells; the red-dot victim has no
    Flax module, so an incremental forward could not even be built for it."""
    images = grey_images(1)
    config = AttackConfig(search="exhaustive", slots=2, seed=3, forward="incremental")
    results = run_attack(red_dot_victim, config, images, np.full(1, TRUE_CLASS), image_indices=[10])
    record = results.records[0]
    assert record["success"] and record["pixels"] == [[WEAK_X, WEAK_Y, 255, 0, 0]]
    assert record["queries"] == _weak_position(10, -1) + 1


def test_exhaustive_is_one_pixel_only():
    with pytest.raises(ValueError, match="pixels"):
        AttackConfig(search="exhaustive", pixels=3)
    with pytest.raises(ValueError, match="search"):
        AttackConfig(search="nelder-mead")  # not a registered search
    assert AttackConfig(search="exhaustive").max_queries == TOTAL


def test_search_field_keeps_old_keys():
    """A DE config's search key has no `search` entry, so stores written before the field
    existed keep their cell ids and resume; the exhaustive one is told apart."""
    assert "search" not in AttackConfig().search_key()
    assert AttackConfig(search="exhaustive").search_key()["search"] == "exhaustive"
