"""Dead-pixel augmentation: exactly k distinct pixels an image, values of the chosen
kind, labels neither read nor changed, p = 0 the identity and p = 1 every image; specs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deattack.training import augment
from deattack.training.train import TrainConfig
from tests import support


@pytest.fixture(autouse=True)
def strict_numerics():
    """Strict numerics: dtype promotion raises; rank promotion is allowed (the attack's
    population initialisers need it)."""
    with support.strict_numerics("allow"):
        yield


def _images(n=12, seed=0):
    # Half-integer values: every dead value (an integer in 0..255) differs from them in
    # every channel, so a changed pixel is always visible against the input.
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.integers(0, 255, (n, 32, 32, 3)) + 0.5, jnp.float32)


def _changed(out, images):
    return np.any(np.asarray(out) != np.asarray(images), axis=-1)  # [N, H, W]


@pytest.mark.parametrize("values", augment.DEAD_PIXEL_VALUES)
def test_exactly_k_pixels_with_values_of_the_kind(values):
    images = _images()
    out = augment.dead_pixels(jax.random.key(1), images, jnp.arange(12), k_min=3, k_max=3,
                              probability=1.0, values=values)
    assert out.shape == images.shape and out.dtype == images.dtype
    changed = _changed(out, images)
    np.testing.assert_array_equal(changed.sum(axis=(1, 2)), np.full(12, 3))
    dead = np.asarray(out)[changed]  # [12 * 3, C]
    np.testing.assert_array_equal(np.asarray(out)[~changed], np.asarray(images)[~changed])
    assert np.all(dead == np.round(dead)) and dead.min() >= 0 and dead.max() <= 255
    if values == "black":
        assert np.all(dead == 0)
    elif values == "white":
        assert np.all(dead == 255)
    elif values == "saturated":
        assert set(np.unique(dead)) == {0.0, 255.0}
    elif values == "random":
        assert len(np.unique(dead)) > 20  # 108 draws from 256 values


def test_k_is_drawn_per_batch_in_range_and_labels_are_ignored():
    images = _images(n=6)
    counts = set()
    for seed in range(24):
        key = jax.random.key(seed)
        out = augment.dead_pixels(key, images, jnp.arange(6), k_min=1, k_max=4, probability=1.0)
        per_image = _changed(out, images).sum(axis=(1, 2))
        assert len(set(per_image.tolist())) == 1, per_image  # one k for the whole batch
        counts.add(int(per_image[0]))
        other_labels = augment.dead_pixels(key, images, jnp.full(6, 9), k_min=1, k_max=4, probability=1.0)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(other_labels))
    assert counts <= {1, 2, 3, 4} and len(counts) >= 3, counts


def test_probability_zero_is_identity_and_one_hits_every_image():
    images = _images(n=200)
    labels = jnp.zeros(200, jnp.int32)
    none = augment.dead_pixels(jax.random.key(2), images, labels, k_min=2, k_max=2, probability=0.0)
    np.testing.assert_array_equal(np.asarray(none), np.asarray(images))
    every = augment.dead_pixels(jax.random.key(2), images, labels, k_min=2, k_max=2, probability=1.0)
    assert np.all(_changed(every, images).sum(axis=(1, 2)) == 2)
    half = augment.dead_pixels(jax.random.key(3), images, labels, k_min=2, k_max=2, probability=0.5)
    hit = _changed(half, images).sum(axis=(1, 2))
    assert set(hit.tolist()) <= {0, 2}
    assert 70 <= int((hit == 2).sum()) <= 130  # Binomial(200, 0.5): 5 sigma either side


def test_spec_in_the_train_config_is_the_same_function_under_jit():
    augment_fn = augment.compose(("dead_pixels:k=2,p=1,values=white",))
    images = _images(n=4)
    eager = augment_fn(jax.random.key(5), images, jnp.arange(4))
    jitted = jax.jit(augment_fn)(jax.random.key(5), images, jnp.arange(4))
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))
    assert np.all(_changed(eager, images).sum(axis=(1, 2)) == 2)


def test_specs_split_normalise_and_record_their_options():
    config = TrainConfig(model="lenet", augmentations="crop,flip,dead_pixels:p=0.25,k=1-3")
    assert config.augmentations == ("crop", "flip", "dead_pixels:k=1-3,p=0.25")
    assert TrainConfig(model="lenet").augmentations == ("crop", "flip")  # old configs unchanged
    assert augment.describe(config.augmentations)[2] == {"name": "dead_pixels", "k": "1-3", "p": "0.25",
                                                         "values": "saturated"}
    assert augment.defense_tag(config.augmentations) == "deadpixel"
    assert augment.defense_tag(("crop", "de_attack:fraction=0.5")) == "advde"
    assert augment.defense_tag(("crop", "flip")) == ""


@pytest.mark.parametrize("spec, match", [
    ("dead_pixels:k=0", "k=0"), ("dead_pixels:k=3-1", "empty"), ("dead_pixels:p=1.5", "p=1.5"),
    ("dead_pixels:values=grey", "values"), ("dead_pixels:size=2", "no option 'size'"),
    ("dead_pixels:k", "key=value"), ("de_attack:popsize=2", "population_size"),
    ("de_attack:fraction=0", "fraction"), ("blur", "unknown augmentation"),
])
def test_bad_specs_name_the_problem(spec, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(model="lenet", augmentations=("crop", spec))
