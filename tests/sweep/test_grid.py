"""A sweep config's grid: expansion (count, order, stable cell ids), units and shards,
and bad configs -> ValueError naming the key before any work."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from deattack import config_files
from deattack.attack import AttackConfig
from deattack.attack.targets import random_targets
from deattack.overrides import apply_overrides
from deattack.sweep.grid import ImageSet, SweepConfig, expand, parse_shard, shard_units, units_of
from tests.sweep import toy

GRID = SweepConfig(victims=("a", "b"), pixels=(1, 3, 5), modes=("untargeted", "targeted"),
                   mutations=("rand/1", "best/1"), crossovers=("none", "bin"), adaptations=("constant",),
                   seeds=(0, 1), images=ImageSet(count=10), chunk_images=4)


def test_expansion_count_and_order():
    cells = expand(GRID)
    assert len(cells) == 2 * 3 * 2 * 2 * 2 * 1 * 2
    expected = list(itertools.product(("a", "b"), (1, 3, 5), ("untargeted", "targeted"), ("rand/1", "best/1"),
                                      ("none", "bin"), ("constant",), (0, 1)))
    got = [(c.victim, c.attack.pixels, c.attack.mode, c.attack.mutation, c.attack.crossover,
            c.attack.adaptation, c.attack.seed) for c in cells]
    assert got == expected
    assert [c.position for c in cells] == list(range(len(cells)))
    # shared fields come from `attack`, grid fields from the grid
    assert {c.attack.population_size for c in cells} == {GRID.attack.population_size}


def test_cell_ids_are_stable_and_ignore_layout():
    ids = [c.cell_id for c in expand(GRID)]
    assert len(set(ids)) == len(ids)
    assert ids == [c.cell_id for c in expand(GRID)]
    relaid = dataclasses.replace(GRID, attack=dataclasses.replace(GRID.attack, slots=64, chunk_generations=3))
    assert [c.cell_id for c in expand(relaid)] == ids
    bigger = dataclasses.replace(GRID, attack=dataclasses.replace(GRID.attack, population_size=50))
    assert not set(c.cell_id for c in expand(bigger)) & set(ids)
    assert relaid.key() == GRID.key() and bigger.key() != GRID.key()


def test_units_and_shards_cover_every_unit_once():
    units = units_of(GRID)
    assert len(units) == len(expand(GRID)) * 3  # 10 images in chunks of 4: 4 + 4 + 2
    assert [(u.start, u.stop) for u in units[:3]] == [(0, 4), (4, 8), (8, 10)]
    for count in (1, 2, 3, 7):
        shards = [shard_units(units, (i, count)) for i in range(count)]
        keys = [(u.cell.cell_id, u.chunk) for shard in shards for u in shard]
        assert sorted(keys) == sorted((u.cell.cell_id, u.chunk) for u in units)
        assert len(set(keys)) == len(keys)
    assert shard_units(units, "1/3") == shard_units(units, (1, 3))


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "0/0"])
def test_bad_shard(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


@pytest.mark.parametrize("changes, key", [
    ({"pixels": (1, 0)}, "pixels"),
    ({"pixels": ()}, "pixels"),
    ({"victims": ()}, "victims"),
    ({"modes": ("sideways",)}, "modes"),
    ({"mutations": ("rand/1", "no-such-operator")}, "mutations"),
    ({"crossovers": ("sometimes",)}, "crossovers"),
    ({"adaptations": ("magic",)}, "adaptations"),
    ({"seeds": (0, 0)}, "seeds"),
    ({"chunk_images": 0}, "chunk_images"),
    ({"attack": AttackConfig(pixels=3)}, "attack.pixels"),
    ({"attack": AttackConfig(mutation="best/1")}, "attack.mutation"),
])
def test_bad_config_names_the_key(changes, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        dataclasses.replace(GRID, **changes)


@pytest.mark.parametrize("assignment, key", [
    ("bogus=1", "bogus"),
    ("pixels=0", "pixels"),
    ("mutations=nope", "mutations"),
    ("images.count=0", "images.count"),
    ("images.split=validation", "images.split"),
    ("attack.population_size=0", "population_size"),
    ("attack.max_generations=-1", "max_generations"),
])
def test_bad_override_names_the_key(assignment, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        apply_overrides(GRID, [assignment])


def test_overrides_set_grid_values():
    config = apply_overrides(GRID, ["pixels=1,3", "modes=targeted", "attack.population_size=12",
                                    "images.count=3"])
    assert config.pixels == (1, 3) and config.modes == ("targeted",)
    assert config.attack.population_size == 12 and config.images.count == 3
    assert len(expand(config)) == 2 * 2 * 1 * 2 * 2 * 1 * 2


def test_image_range_outside_split_fails_before_any_work(tmp_path, toy_inputs):
    from deattack.sweep.run import run_sweep

    config = dataclasses.replace(toy.CONFIG, images=ImageSet(count=toy.NUM_IMAGES + 1))
    with pytest.raises(ValueError, match="images.count"):
        run_sweep(config, tmp_path / "s.sqlite", **toy_inputs)
    assert not (tmp_path / "s.sqlite").exists()


def test_unknown_victim_fails_before_any_work(tmp_path, toy_inputs):
    from deattack.sweep.run import run_sweep

    config = dataclasses.replace(toy.CONFIG, victims=("toy", "no-such-victim"))
    with pytest.raises(ValueError, match="victims"):
        run_sweep(config, tmp_path / "s.sqlite", **toy_inputs)
    assert not (tmp_path / "s.sqlite").exists()


def test_random_targets_ignore_chunking():
    labels = np.arange(20) % 10
    whole = random_targets(3, np.arange(20), labels, 10)
    parts = np.concatenate([random_targets(3, np.arange(i, i + 5), labels[i:i + 5], 10) for i in range(0, 20, 5)])
    np.testing.assert_array_equal(whole, parts)
    assert np.all(whole != labels) and whole.min() >= 0 and whole.max() < 10


@pytest.mark.parametrize("spec, cells", [
    ("configs/sweep_smoke.py", 2),
    ("configs/keras_table.py", 12),
    ("configs/keras_table.py:smoke", 12),
    ("configs/su2019_sweep.py", 12),
    ("configs/su2019_sweep.py:smoke", 6),
])
def test_shipped_configs_expand(spec, cells):
    config = config_files.load(spec)
    assert isinstance(config, SweepConfig)
    assert len(expand(config)) == cells


def test_su2019_sweep_is_the_papers_setting():
    config = config_files.load("configs/su2019_sweep.py")
    assert config.pixels == (1, 3, 5) and config.modes == ("untargeted", "targeted")
    for cell in expand(config):
        a = cell.attack
        assert (a.mutation, a.crossover, a.adaptation, a.differential_weight) == ("rand/1", "none", "constant", 0.5)
        assert (a.population_size, a.max_generations, a.targets) == (400, 100, "all")
