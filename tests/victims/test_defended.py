"""Inference-time wrappers: shape/dtype preserving, the median filter equals scipy's,
outlier repair fixes a planted outlier and leaves a smooth image alone, treats pixel
clusters as the order statistics of 8 neighbours say (so on a flat background clustering
fewer than 5 pixels buys an attacker nothing), the wrapped victim computes
victim(transform(x)), and a wrapper removes a known one-pixel weakness."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from deattack.filters import median3, outlier_repair
from deattack.victims.defended import parse_defense, split_victim_spec, wrap
from tests import support
from tests.attack import red_dot


@pytest.fixture(autouse=True)
def strict_numerics():
    """Strict numerics: dtype promotion raises; rank promotion is allowed (the attack's
    population initialisers need it)."""
    with support.strict_numerics("allow"):
        yield


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_median3_equals_scipy_and_keeps_shape_and_dtype(dtype):
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(dtype)
    out = median3(jnp.asarray(images))
    assert out.shape == images.shape and out.dtype == images.dtype
    reference = np.stack([ndimage.median_filter(image, size=(3, 3, 1)) for image in images])
    np.testing.assert_array_equal(np.asarray(out), reference)


def _smooth_image():
    rows, columns = np.mgrid[0:32, 0:32].astype(np.float32)
    return np.stack([60 + 3 * rows, 100 + 2 * columns + 10 * np.sin(rows / 5), 200 - 2 * rows - columns],
                    axis=-1)[None]


def _neighbour_median(image, row, column):
    """Median of the 8 neighbours, borders mirrored without the edge (numpy 'reflect')."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    block = padded[row:row + 3, column:column + 3].reshape(9, -1)
    return np.median(np.delete(block, 4, axis=0), axis=0)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_outlier_repair_fixes_a_planted_outlier_and_leaves_smooth_images_alone(dtype):
    smooth = np.round(_smooth_image()).astype(dtype)
    out = outlier_repair(jnp.asarray(smooth))
    assert out.shape == smooth.shape and out.dtype == smooth.dtype
    np.testing.assert_array_equal(np.asarray(out), smooth)  # nothing there is an outlier
    for row, column in [(10, 12), (0, 0), (31, 17)]:
        planted = smooth.copy()
        planted[0, row, column] = (255, 0, 255)
        repaired = np.asarray(outlier_repair(jnp.asarray(planted)))
        expected = _neighbour_median(smooth[0].astype(np.float64), row, column)
        np.testing.assert_allclose(repaired[0, row, column], expected, atol=0.5)
        mask = np.ones((32, 32), bool)
        mask[row, column] = False
        np.testing.assert_array_equal(repaired[0][mask], smooth[0][mask])  # only the outlier changed


def test_outlier_threshold_is_strict_and_per_channel():
    image = np.full((1, 5, 5, 3), 100.0, np.float32)
    image[0, 2, 2, 1] = 140.0  # one channel 40 above its neighbours' median
    np.testing.assert_array_equal(np.asarray(outlier_repair(jnp.asarray(image), 40.0)), image)
    repaired = np.asarray(outlier_repair(jnp.asarray(image), 39.0))
    np.testing.assert_array_equal(repaired, np.full_like(image, 100.0))


def test_wrapped_victim_is_the_victim_after_the_transform():
    victim = red_dot.make_victim()
    wrapped = wrap(victim, "median3+repair:threshold=32")
    assert wrapped.name == "median3+repair:threshold=32+red-dot"
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    logits = wrapped.apply_fn(wrapped.variables, jnp.asarray(images))
    assert logits.shape == (4, 10) and logits.dtype == jnp.float32
    expected = red_dot.numpy_red_dot_logits(np.asarray(outlier_repair(median3(jnp.asarray(images)), 32.0)))
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-4)
    assert wrapped.metadata["defense"] == "median3+repair:threshold=32"


@pytest.mark.parametrize("defense", ["median3", "repair"])
def test_wrapper_removes_the_known_one_pixel_weakness(defense):
    # Every location, pure red (the strongest one-pixel change for this victim): the bare
    # victim is fooled exactly at its weak pixel, the wrapped one nowhere.
    images = np.full((32 * 32, 32, 32, 3), red_dot.GREY, np.float32)
    rows, columns = np.divmod(np.arange(32 * 32), 32)
    images[np.arange(32 * 32), rows, columns] = (255, 0, 0)
    victim = red_dot.make_victim()
    bare = np.argmax(np.asarray(victim.logits(jnp.asarray(images))), -1)
    assert np.flatnonzero(bare == red_dot.WEAK_CLASS).tolist() == [red_dot.WEAK_Y * 32 + red_dot.WEAK_X]
    wrapped = np.argmax(np.asarray(wrap(victim, defense).logits(jnp.asarray(images))), -1)
    assert np.all(wrapped == red_dot.TRUE_CLASS)


@pytest.mark.parametrize("spec, match", [
    ("blur+lenet", "unknown defense"), ("repair:threshold=x+lenet", "threshold"),
    ("repair:threshold=300+lenet", "threshold"), ("median3:size=5+lenet", "bad option"), ("median3+", "DEFENSE"),
])
def test_bad_victim_specs_name_the_problem(spec, match):
    with pytest.raises(ValueError, match=match):
        split_victim_spec(spec)


def test_defense_specs_round_trip():
    assert parse_defense("repair").spec() == "repair"
    assert parse_defense("repair").spec(full=True) == "repair:threshold=64"
    assert parse_defense("repair:threshold=32").spec() == "repair:threshold=32"


def _cluster_images(offset: float, background: float = 100.0):
    """Every non-empty subset of the 3x3 window at the centre of a flat 9x9 image, raised by
    `offset` in all channels: [511, 9, 9, 3] images and their [511, 9, 9] masks."""
    subsets = np.array([[(s >> i) & 1 for i in range(9)] for s in range(1, 512)], bool).reshape(-1, 3, 3)
    masks = np.zeros((len(subsets), 9, 9), bool)
    masks[:, 3:6, 3:6] = subsets
    images = np.where(masks[..., None], background + offset, background).astype(np.float32)
    return np.broadcast_to(images, (*images.shape[:3], 3)).copy(), masks


@pytest.mark.parametrize("offset", [100.0, 200.0])
def test_repair_of_pixel_clusters_follows_the_order_statistics(offset):
    # On a flat background a pixel with m raised neighbours (of 8) has neighbour median
    # background (m <= 3), background + offset / 2 (m = 4) or background + offset (m >= 5):
    # the mean of the 4th and 5th of 8 values. Repair keeps a pixel within the threshold of
    # that median and replaces the rest by it, raised pixels and clean ones alike.
    threshold, background = 64.0, 100.0
    images, masks = _cluster_images(offset, background)
    counts = np.stack([np.roll(masks, (dy, dx), axis=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                       if (dy, dx) != (0, 0)]).sum(axis=0)
    median = background + offset * np.select([counts <= 3, counts == 4], [0.0, 0.5], 1.0)
    value = images[..., 0]
    expected = np.where(np.abs(value - median) > threshold, median, value)
    repaired = np.asarray(outlier_repair(jnp.asarray(images), threshold))
    np.testing.assert_array_equal(repaired, np.repeat(expected[..., None], 3, axis=-1))

    # What that means for an attacker who clusters k pixels: the most raised pixels that
    # survive. Up to 4 pixels no pixel has more than 3 raised neighbours, so a cluster is
    # repaired exactly like lone pixels; from 5, pixels with 4 raised neighbours (e.g. the
    # two inner pixels of a 2 x 2 block with one more beside it) survive while the offset is
    # at most twice the threshold; from 6 (a 2 x 3 block's two middle pixels have 5) the
    # cluster owns some medians whatever its colour; the full 3 x 3 block keeps a plus of 5.
    survivors = ((repaired[..., 0] == background + offset) & masks).sum(axis=(1, 2))
    best = {k: int(survivors[masks.sum(axis=(1, 2)) == k].max()) for k in (1, 2, 3, 4, 5, 6, 9)}
    assert best == ({1: 0, 2: 0, 3: 0, 4: 0, 5: 2, 6: 3, 9: 5} if offset <= 2 * threshold
                    else {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 2, 9: 5})
