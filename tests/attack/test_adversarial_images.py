"""The adversarial images of a run (issue 27, item 15): `AttackResults.adversarial_images()`
and OUT/adversarial.npz hold each success's image, rebuilt from its record's pixels, and
the victim classifies each as the record says; a resumed folder keeps the successes of
images the resuming call did not load."""

from __future__ import annotations

import numpy as np
import pytest

from deattack.attack import attack
from tests.support import numpy_write_pixels

from .red_dot import BASE_CONFIG, NUM_WEAKNESS_IMAGES, TRUE_CLASS, WEAK_CLASS, grey_images, numpy_red_dot_logits

pytestmark = pytest.mark.allow_rank_promotion


def _check(adversarial, records, clean_images: dict[int, np.ndarray]) -> None:
    """Each success once, its image = the clean one with the record's pixels written in
    (the test's own transcription), classified by the victim as recorded."""
    successes = {(r["image_index"], r["target"]): r for r in records if r["success"]}
    assert sorted(zip(adversarial.indices.tolist(), adversarial.targets.tolist())) == sorted(successes)
    assert adversarial.images.dtype == np.uint8 and adversarial.clean.dtype == np.uint8
    for position, (index, target) in enumerate(zip(adversarial.indices, adversarial.targets)):
        record = successes[(int(index), int(target))]
        expected = numpy_write_pixels(clean_images[int(index)], record["pixels"])
        np.testing.assert_array_equal(adversarial.images[position], expected)
        np.testing.assert_array_equal(adversarial.clean[position], clean_images[int(index)])
        assert adversarial.labels[position] == record["true_label"]
        assert adversarial.predictions[position] == record["adversarial_prediction"] == WEAK_CLASS
    logits = numpy_red_dot_logits(adversarial.images.astype(np.float64))
    np.testing.assert_array_equal(np.argmax(logits, axis=-1), adversarial.predictions)


def test_adversarial_images_of_a_run(untargeted_run):
    images = grey_images(NUM_WEAKNESS_IMAGES)
    adversarial = untargeted_run.adversarial_images()
    assert len(adversarial.images) == NUM_WEAKNESS_IMAGES
    assert adversarial.images.shape == (NUM_WEAKNESS_IMAGES, 32, 32, 3)
    _check(adversarial, untargeted_run.records, dict(enumerate(images)))


def test_the_folder_keeps_every_success_across_resumed_calls(red_dot_victim, untargeted_run, tmp_path):
    # Distinct clean images, so a row taken from the wrong image would show.
    images = np.stack([grey_images(1, value)[0] for value in (120, 128, 136, 144)])
    labels = np.full(len(images), TRUE_CLASS)
    first = attack(red_dot_victim, images[:3], labels[:3], BASE_CONFIG, out=tmp_path)
    path = tmp_path / "adversarial.npz"
    assert first.summary["adversarial"] == str(path)
    with np.load(path) as stored:
        assert set(stored.files) == {"images", "clean", "indices", "targets", "labels", "predictions"}
        assert len(stored["images"]) == 3
    # A resumed call that loads only image 3: images 0-2's successes stay (their clean
    # images are read back from the file), image 3's is added.
    second = attack(red_dot_victim, images[3:], labels[3:], BASE_CONFIG, image_indices=[3], out=tmp_path)
    clean = dict(enumerate(images))
    _check(second.adversarial_images(), second.records, clean)
    with np.load(path) as stored:
        assert sorted(stored["indices"].tolist()) == [0, 1, 2, 3]
        order = np.argsort(stored["indices"])
        np.testing.assert_array_equal(stored["clean"][order], images)
        np.testing.assert_array_equal(stored["images"][order], second.adversarial_images().images[
            np.argsort(second.adversarial_images().indices)])
