"""build_problems: which (image, target) problems an attack runs, for every targets rule."""

import numpy as np
import pytest

from deattack.attack import AttackConfig
from deattack.attack.problems import build_problems
from deattack.attack.targets import random_targets

LABELS = np.asarray([3, 7, 3, 0])
INDICES = np.asarray([10, 11, 12, 13])


def _pairs(problems):
    return [(p.image_index, p.target) for p in problems]


def test_untargeted_is_one_problem_an_image():
    problems = build_problems(AttackConfig(), LABELS, INDICES, None, 10)
    assert _pairs(problems) == [(10, -1), (11, -1), (12, -1), (13, -1)]
    assert [p.row for p in problems] == [0, 1, 2, 3]


def test_all_targets_are_every_other_class():
    problems = build_problems(AttackConfig(mode="targeted"), LABELS, INDICES, None, 4)
    expected = [(i, t) for i, label in zip(INDICES, LABELS) for t in range(4) if t != label]
    assert _pairs(problems) == expected


def test_random_target_follows_the_one_rule():
    config = AttackConfig(mode="targeted", targets="random", seed=5)
    problems = build_problems(config, LABELS, INDICES, None, 10)
    assert _pairs(problems) == list(zip(INDICES, random_targets(5, INDICES, LABELS, 10)))


def test_one_class_for_every_image_skips_the_images_of_that_class():
    """Issue 27 item 19: targets=CLASS (the CLI's --targets 7 / --targets horse)."""
    problems = build_problems(AttackConfig(mode="targeted", targets=7), LABELS, INDICES, None, 10)
    assert _pairs(problems) == [(10, 7), (12, 7), (13, 7)]  # image 11 is a 7 already
    assert [p.row for p in problems] == [0, 2, 3]


def test_given_targets_win_over_the_config():
    problems = build_problems(AttackConfig(mode="targeted", targets=7), LABELS, INDICES,
                              np.asarray([1, 2, 4, 5]), 10)
    assert _pairs(problems) == [(10, 1), (11, 2), (12, 4), (13, 5)]


def test_class_target_outside_the_victims_classes():
    with pytest.raises(ValueError, match="targets=4 is not a class of this victim"):
        build_problems(AttackConfig(mode="targeted", targets=4), LABELS, INDICES, None, 4)
