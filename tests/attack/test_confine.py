"""neighbour_radius (deattack.attack.confine): colours kept within r of the median of their
8 clean neighbours, checked against scipy's filter, against the repair defense it is built
to pass, and end to end on the red-dot victim (red_dot.py), whose weakness lies inside or
outside the allowed colours depending on the background."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from deattack.attack import AttackConfig, confine
from deattack.attack.encoding import decode
from deattack.attack.fitness import make_fitness
from deattack.attack.perturb import apply_pixels
from deattack.attack.problems import ProblemArrays
from deattack.filters import outlier_repair
from deattack.victims.defended import wrap

from .red_dot import BASE_CONFIG, TRUE_CLASS, WEAK_CLASS, WEAK_X, WEAK_Y, grey_images

RADIUS = 64.0
CONFINED = dataclasses.replace(BASE_CONFIG, neighbour_radius=RADIUS)
# r - g - b = 62 (class 3 holds); within 64 a channel of it, (254, 0, 0) reaches the
# weak class's 243, and nowhere else does anything redder than the background is allowed.
REDDISH = (190, 64, 64)


def _scipy_neighbour_median(image: np.ndarray) -> np.ndarray:
    """[H, W, C]: the median of the 8 neighbours (centre left out), scipy "mirror" = numpy "reflect"."""
    footprint = np.ones((3, 3, 1), bool)
    footprint[1, 1, 0] = False
    return scipy.ndimage.generic_filter(image.astype(np.float64), np.median, footprint=footprint, mode="mirror")


def _random_candidates(rng, count: int, pixels: int) -> np.ndarray:
    genes = rng.uniform(0, 1, (count, pixels, 5)) * np.asarray([32 - 1e-3, 32 - 1e-3, 255, 255, 255])
    return genes.reshape(count, -1).astype(np.float32)


def test_neighbour_medians_equal_scipys_filter_everywhere_including_borders():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.float32)
    expected = _scipy_neighbour_median(image)
    rows, columns = np.mgrid[0:32, 0:32]
    locations = np.stack([columns.ravel(), rows.ravel()], axis=-1).astype(np.int32)  # every (x, y)
    medians = np.asarray(confine.neighbour_medians(jnp.asarray(image), jnp.asarray(locations)))
    np.testing.assert_array_equal(medians, expected[locations[:, 1], locations[:, 0]])


def test_confined_colours_are_integers_within_the_radius_and_coordinates_stay():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.float32)
    medians = _scipy_neighbour_median(image)
    genes = _random_candidates(rng, 200, 3)
    for radius in (0.5, 16.0, 64.0):
        confined = np.asarray(confine.confine_batch(jnp.broadcast_to(image, (200, 32, 32, 3)),
                                                    jnp.asarray(genes), radius))
        pixels, before = confined.reshape(200, 3, 5), genes.reshape(200, 3, 5)
        np.testing.assert_array_equal(pixels[..., :2], before[..., :2])
        colours = pixels[..., 2:]
        assert np.all(colours == np.round(colours)) and colours.min() >= 0 and colours.max() <= 255
        m = medians[np.floor(before[..., 1]).astype(int), np.floor(before[..., 0]).astype(int)]
        assert np.all(np.abs(colours - m) <= radius)
        # A colour already inside stays (rounded); one outside lands on the nearest allowed integer.
        inside = np.abs(np.round(before[..., 2:]) - m) <= radius
        np.testing.assert_array_equal(colours[inside], np.round(before[..., 2:])[inside])
        low, high = np.maximum(np.ceil(m - radius), 0), np.minimum(np.floor(m + radius), 255)
        nearest = np.clip(np.round(before[..., 2:]), low, high)
        np.testing.assert_array_equal(colours, nearest)
        again = np.asarray(confine.confine_batch(jnp.broadcast_to(image, (200, 32, 32, 3)),
                                                 jnp.asarray(confined), radius))
        np.testing.assert_array_equal(again, confined)  # a projection


def test_a_lone_confined_pixel_survives_the_repair_it_was_confined_for():
    """What the option is for: repair:threshold=T leaves a lone pixel confined to T alone,
    while the unconfined extreme colour is repaired back to its neighbours' median."""
    rng = np.random.default_rng(2)
    smooth = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (32, 32, 3)), sigma=(3, 3, 0))
    image = jnp.asarray(np.round(smooth), jnp.float32)
    genes = _random_candidates(rng, 64, 1)
    genes[:, 2:] = np.where(rng.random((64, 3)) < 0.5, 0.0, 255.0)  # corner colours: mostly outliers
    confined = confine.confine_batch(jnp.broadcast_to(image, (64, 32, 32, 3)), jnp.asarray(genes), RADIUS)
    repaired_raw = 0
    for raw, kept in zip(genes, np.asarray(confined)):
        (x, y), colour = np.floor(kept[:2]).astype(int), kept[2:]
        attacked = apply_pixels(image, jnp.asarray(kept))[None]
        np.testing.assert_array_equal(np.asarray(outlier_repair(attacked, RADIUS))[0, y, x], colour)
        unconfined = np.asarray(outlier_repair(apply_pixels(image, jnp.asarray(raw))[None], RADIUS))[0, y, x]
        repaired_raw += not np.array_equal(unconfined, raw[2:])
    assert repaired_raw >= 48  # the corner colours mostly do not survive


def test_the_fitness_scores_a_candidate_as_its_projection():
    rng = np.random.default_rng(3)
    from .red_dot import make_victim

    victim = make_victim()
    images = jnp.asarray(rng.integers(0, 256, (2, 32, 32, 3)), jnp.float32)
    problems = ProblemArrays(images=images, labels=jnp.full((2,), TRUE_CLASS, jnp.int32),
                               targets=jnp.full((2,), -1, jnp.int32))
    candidates = jnp.asarray(_random_candidates(rng, 2 * 8, 2).reshape(2, 8, 10))
    plain = make_fitness(AttackConfig(pixels=2, population_size=8), victim.apply_fn)
    confined = make_fitness(AttackConfig(pixels=2, population_size=8, neighbour_radius=RADIUS),
                                   victim.apply_fn)
    projected = jnp.stack([confined.project(jnp.broadcast_to(images[i], (8, 32, 32, 3)), candidates[i])
                           for i in range(2)])
    active = jnp.ones((2,), bool)
    got = confined(candidates, (victim.variables, problems), active)
    want = plain(projected, (victim.variables, problems), active)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    assert not np.array_equal(np.asarray(projected), np.asarray(candidates))
    first = candidates[:, 0]
    assert plain.project(images, first) is first  # radius 0: untouched


@pytest.mark.allow_rank_promotion
def test_the_red_dot_is_out_of_reach_on_grey_and_found_through_repair_on_a_reddish_background(
        red_dot_victim, run_attack):
    """Grey 128: the allowed colours are 64-192 a channel, r - g - b <= 64 < 243: no success
    (and no false claim: "failed", not "unverified"). Reddish (190, 64, 64): (254, 0, 0) is
    within 64 a channel, and the attack finds red enough end to end through
    repair:threshold=64, which lets it through."""
    labels = np.full(2, TRUE_CLASS)
    grey = run_attack(red_dot_victim, CONFINED, grey_images(2), labels)
    assert [r["status"] for r in grey.records] == ["failed", "failed"]
    for record in grey.records:
        (_, _, r, g, b), = record["pixels"]
        assert all(64 <= c <= 192 for c in (r, g, b))

    reddish = np.broadcast_to(np.asarray(REDDISH, np.uint8), (2, 32, 32, 3)).copy()
    defended = wrap(red_dot_victim, f"repair:threshold={RADIUS:g}")
    results = run_attack(defended, CONFINED, reddish, labels)
    assert all(r["success"] for r in results.records)
    for record in results.records:
        (x, y, r, g, b), = record["pixels"]
        assert (x, y) == (WEAK_X, WEAK_Y) and record["adversarial_prediction"] == WEAK_CLASS
        assert abs(r - 190) <= RADIUS and abs(g - 64) <= RADIUS and abs(b - 64) <= RADIUS
        image = reddish[:1].astype(np.float32)
        image[0, y, x] = (r, g, b)
        assert np.array_equal(np.asarray(outlier_repair(jnp.asarray(image), RADIUS))[0, y, x], (r, g, b))


@pytest.mark.parametrize("radius", [-1.0, 255.5, float("nan")])
def test_a_radius_outside_0_255_is_refused(radius):
    with pytest.raises(ValueError, match="neighbour_radius"):
        AttackConfig(neighbour_radius=radius)


def test_the_corner_scan_and_the_scipy_peer_refuse_a_radius():
    with pytest.raises(ValueError, match="exhaustive.*neighbour_radius"):
        AttackConfig(search="exhaustive", neighbour_radius=8.0)
    from deattack.bench.peers.scipy_de import scipy_attack

    with pytest.raises(ValueError, match="neighbour_radius"):
        scipy_attack(None, grey_images(1), np.asarray([TRUE_CLASS]), AttackConfig(neighbour_radius=8.0))


def test_radius_zero_keeps_every_existing_cell_id():
    """Added after stores were written: at its default it stays out of the search key."""
    assert "neighbour_radius" not in AttackConfig().search_key()
    assert AttackConfig(neighbour_radius=64).search_key()["neighbour_radius"] == 64.0


def test_decode_of_a_projection_is_what_is_recorded():
    """The recorded colours are decode(projected genes): integers, so decoding changes nothing."""
    rng = np.random.default_rng(4)
    image = jnp.asarray(rng.integers(0, 256, (32, 32, 3)), jnp.float32)
    genes = jnp.asarray(_random_candidates(rng, 1, 2)[0])
    projected = confine.confine(image, genes, 10.0)
    _, colours = decode(projected)
    np.testing.assert_array_equal(np.asarray(colours).ravel(), np.asarray(projected).reshape(2, 5)[:, 2:].ravel())
