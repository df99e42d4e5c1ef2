"""The attack must find a victim's known one-pixel weakness: pure red at (x=12, y=20).

The runs are session fixtures (conftest.py), shared with test_reverification.py.
"""

import numpy as np
import pytest

from tests.support import numpy_write_pixels

from .red_dot import (
    BASE_CONFIG,
    GREY,
    MIN_REDNESS,
    NUM_WEAKNESS_IMAGES,
    TARGETED_CONFIG,
    THREE_PIXEL_CONFIG,
    TRUE_CLASS,
    WEAK_CLASS,
    WEAK_X,
    WEAK_Y,
    grey_images,
    make_victim,
    numpy_red_dot_logits,
)

pytestmark = pytest.mark.allow_rank_promotion


def _assert_weak_pixel(pixel):
    x, y, r, g, b = pixel
    assert (x, y) == (WEAK_X, WEAK_Y)
    assert r - g - b >= MIN_REDNESS  # so r >= 243 and g, b <= 12: (nearly) pure red
    assert r >= 243 and g <= 12 and b <= 12


def test_victim_has_exactly_the_designed_weakness():
    """The victim itself, checked pixel by pixel with the NumPy transcription."""
    victim = make_victim()
    clean = grey_images(1).astype(np.float32)
    assert np.argmax(victim.logits(clean)) == TRUE_CLASS

    def predicted(x, y, colour):
        image = clean.copy()
        image[0, y, x] = colour
        logits = np.asarray(victim.logits(image))
        np.testing.assert_allclose(logits, numpy_red_dot_logits(image), rtol=1e-5, atol=1e-5)
        return int(np.argmax(logits))

    assert predicted(WEAK_X, WEAK_Y, (255, 0, 0)) == WEAK_CLASS
    assert predicted(WEAK_X, WEAK_Y, (250, 4, 3)) == WEAK_CLASS  # r - g - b = 243
    assert predicted(WEAK_X, WEAK_Y, (250, 4, 4)) == TRUE_CLASS  # 242
    for dx, dy in [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1)]:
        assert predicted(WEAK_X + dx, WEAK_Y + dy, (255, 0, 0)) == TRUE_CLASS
    assert predicted(WEAK_Y, WEAK_X, (255, 0, 0)) == TRUE_CLASS  # x and y swapped


@pytest.mark.parametrize("run_name, config", [("untargeted_run", BASE_CONFIG),
                                              ("targeted_run", TARGETED_CONFIG)])
def test_one_pixel_attack_finds_the_weak_pixel(request, run_name, config):
    results = request.getfixturevalue(run_name)
    assert results.config == config
    assert len(results.records) == NUM_WEAKNESS_IMAGES
    assert sorted(r["image_index"] for r in results.records) == list(range(NUM_WEAKNESS_IMAGES))
    for record in results.records:
        assert record["success"] and record["status"] == "success", record
        assert record["true_label"] == TRUE_CLASS
        assert record["target"] == (WEAK_CLASS if config.mode == "targeted" else -1)
        assert len(record["pixels"]) == 1
        _assert_weak_pixel(record["pixels"][0])
        assert record["adversarial_prediction"] == WEAK_CLASS
        assert record["original_prediction"] == TRUE_CLASS
        assert 1 <= record["generations"] <= config.max_generations
        assert record["queries"] == config.population_size * (record["generations"] + 1)
        assert record["queries"] <= config.max_queries == 50 * 41
        # best_fitness is the fitness of the reported pixel: p(3) untargeted, 1 - p(7) targeted
        perturbed = numpy_write_pixels(grey_images(1)[0], record["pixels"]).astype(np.float32)
        logits = numpy_red_dot_logits(perturbed[None])[0]
        probabilities = np.exp(logits) / np.sum(np.exp(logits))
        expected = probabilities[TRUE_CLASS] if config.mode == "untargeted" else 1 - probabilities[WEAK_CLASS]
        assert record["best_fitness"] == pytest.approx(expected, abs=1e-5)
        assert record["adversarial_confidence"] == pytest.approx(probabilities[WEAK_CLASS], abs=1e-5)
    summary = results.summary
    assert summary["n_success"] == summary["n_problems"] == NUM_WEAKNESS_IMAGES
    assert summary["success_rate"] == 1.0
    assert summary["queries_this_run"] == sum(r["queries"] for r in results.records)
    np.testing.assert_array_equal(results.success, True)
    np.testing.assert_array_equal(results.queries, [r["queries"] for r in results.records])


def test_three_pixel_attack_finds_the_weak_pixel(three_pixel_run):
    config = THREE_PIXEL_CONFIG
    assert len(three_pixel_run.records) == 2
    for record in three_pixel_run.records:
        assert record["success"] and record["adversarial_prediction"] == WEAK_CLASS, record
        assert len(record["pixels"]) == 3
        # The pixel that ends up at (12, 20) is the last one written there.
        at_spot = [p for p in record["pixels"] if (p[0], p[1]) == (WEAK_X, WEAK_Y)]
        assert at_spot
        _assert_weak_pixel(at_spot[-1])
        perturbed = numpy_write_pixels(grey_images(1)[0], record["pixels"]).astype(np.float32)
        _assert_weak_pixel([WEAK_X, WEAK_Y, *perturbed[WEAK_Y, WEAK_X]])
        assert np.count_nonzero(np.any(perturbed != GREY, axis=-1)) <= 3
        assert record["queries"] == config.population_size * (record["generations"] + 1)
        assert record["queries"] <= config.max_queries
