"""Every reported success re-verifies independently: the record's pixels written into the
clean image by the test's own transcription (tests/support.numpy_write_pixels, not the
package's perturbation), then the victim's own apply_fn and a NumPy transcription of it,
must give the adversarial class."""

import numpy as np
import pytest

from tests.support import numpy_write_pixels

from .red_dot import GREY, LAYOUTS, TRUE_CLASS, numpy_red_dot_logits

pytestmark = pytest.mark.allow_rank_promotion

RUNS = ["untargeted_run", "targeted_run", "three_pixel_run"]


def assert_successes_reverify(victim, records, config):
    """Every success in `records` (attacks on grey images) fools the victim as reported."""
    successes = [r for r in records if r["success"]]
    assert successes  # else this proves nothing
    clean = np.full((32, 32, 3), GREY, np.uint8)
    for record in successes:
        assert record["true_label"] == TRUE_CLASS
        perturbed = numpy_write_pixels(clean, record["pixels"]).astype(np.float32)
        assert np.count_nonzero(np.any(perturbed != clean, axis=-1)) <= config.pixels
        logits = np.asarray(victim.apply_fn(victim.variables, perturbed[None]))[0]
        reference = numpy_red_dot_logits(perturbed[None])[0]
        np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-5)
        for scores in (logits, reference):
            predicted = int(np.argmax(scores))
            if config.mode == "untargeted":
                assert predicted != record["true_label"]
            else:
                assert predicted == record["target"]
            assert predicted == record["adversarial_prediction"]


@pytest.mark.parametrize("run_name", RUNS)
def test_every_success_reverifies(request, run_name, red_dot_victim):
    results = request.getfixturevalue(run_name)
    assert_successes_reverify(red_dot_victim, results.records, results.config)


def test_every_success_of_the_layout_runs_reverifies(red_dot_victim, layout_results):
    for name, results in layout_results.items():
        assert results.config == LAYOUTS[name]
        assert_successes_reverify(red_dot_victim, results.records, results.config)
