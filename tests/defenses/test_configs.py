"""configs/defenses.py: every variant it names loads, and says what it compares."""

from __future__ import annotations

import pytest

from deattack import config_files
from deattack.defenses.evaluate import DefenseEvalConfig

VARIANTS = ("", "resnet20", "resnet20_wrappers", "resnet20_trained", "lenet", "smoke")


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_load(variant):
    config = config_files.load(f"configs/defenses.py:{variant}" if variant else "configs/defenses.py")
    assert isinstance(config, DefenseEvalConfig) and config.pairs


def test_wrappers_and_trained_split_the_full_evaluation():
    full = config_files.load("configs/defenses.py")
    wrappers = config_files.load("configs/defenses.py:resnet20_wrappers")
    trained = config_files.load("configs/defenses.py:resnet20_trained")
    assert set(wrappers.pairs) | set(trained.pairs) == set(full.pairs)
    assert {wrappers.kind(d) for d, _ in wrappers.pairs} == {"wrapper"}
    assert {trained.kind(d) for d, _ in trained.pairs} == {"trained"}
    assert trained.adaptive_pixels == (3, 10) and "adaptive" in trained.sweeps()
    assert "adaptive" not in wrappers.sweeps()  # wrappers are attacked end to end in the default sweep


def test_unknown_variant_names_the_known_ones():
    with pytest.raises(ValueError, match="resnet20_trained"):
        config_files.load("configs/defenses.py:resnet20_median")
