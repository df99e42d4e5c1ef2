"""The attack tells DE which genes are coordinates and colours (as generic dimension
kinds), and the pixel-aware operator finds the red-dot victim's weakness, a corner colour."""

import dataclasses

import jax
import numpy as np
import pytest

from deattack.attack import AttackConfig
from deattack.attack.encoding import INITIALISATIONS

from .red_dot import BASE_CONFIG, MIN_REDNESS, TRUE_CLASS, WEAK_CLASS, WEAK_X, WEAK_Y, grey_images

pytestmark = pytest.mark.allow_rank_promotion


@pytest.mark.parametrize("pixels", [1, 3])
def test_attack_passes_coordinate_and_colour_kinds(pixels):
    config = AttackConfig(pixels=pixels).de_config()
    assert config.kinds_per_dim == ("integer", "integer", "extreme", "extreme", "extreme") * pixels
    assert config.bounds_per_dim == ("reflect", "reflect", "clip", "clip", "clip") * pixels


def test_snap_local_finds_the_weak_pixel(red_dot_victim, run_attack):
    config = dataclasses.replace(BASE_CONFIG, mutation="rand/1-snap-local")
    results = run_attack(red_dot_victim, config, grey_images(2), np.full(2, TRUE_CLASS))
    for record in results.records:
        assert record["success"] and record["adversarial_prediction"] == WEAK_CLASS, record
        x, y, r, g, b = record["pixels"][0]
        assert (x, y) == (WEAK_X, WEAK_Y) and r - g - b >= MIN_REDNESS
        assert record["queries"] == config.population_size * (record["generations"] + 1)


def test_corner_initialisation():
    population = np.asarray(INITIALISATIONS["corners"](jax.random.key(0), 2000, 2)).reshape(2000, 2, 5)
    coordinates, colours = population[..., :2], population[..., 2:]
    assert ((coordinates >= 0) & (coordinates < 32)).all()
    assert np.isin(colours, [0.0, 255.0]).all()
    # 2000 x 2 x 3 channels: 1/2 each, 5 sigma = 0.014; every column of the grid drawn.
    assert abs((colours == 255).mean() - 0.5) < 0.014
    assert set(np.floor(coordinates[..., 0]).astype(int).ravel()) == set(range(32))
