"""`deattack attack --preset su2019` is the paper's setting whatever the default operator
becomes (issue 7 may change the default; the paper stays one flag away)."""

import dataclasses

from deattack.cli.attack import attack_config as _attack_config
from deattack.cli.main import build_parser

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _config(*argv):
    return _attack_config(build_parser().parse_args(["attack", *argv]), lambda: CIFAR10_NAMES)


def test_preset_su2019_is_the_paper_setting():
    config = _config("--preset", "su2019")
    paper = {"mutation": "rand/1", "crossover": "none", "adaptation": "constant", "differential_weight": 0.5,
             "population_size": 400, "max_generations": 100, "init": "paper", "search": "de", "pixels": 1,
             "mode": "untargeted"}
    assert {k: getattr(config, k) for k in paper} == paper
    assert config.max_queries == 40_400


def test_flags_override_the_preset():
    config = _config("--preset", "su2019", "--pixels", "3", "--operator", "rand/1-snap", "--set", "slots=2")
    assert (config.pixels, config.mutation, config.slots) == (3, "rand/1-snap", 2)
    assert dataclasses.replace(config, pixels=1, mutation="rand/1", slots=_config("--preset", "su2019").slots) \
        == _config("--preset", "su2019")


def test_default_is_the_studys_choice_at_the_papers_budget():
    config, paper = _config(), _config("--preset", "su2019")
    assert (config.mutation, config.init) == ("rand/1-snap-local", "corners")
    same = ("crossover", "adaptation", "differential_weight", "population_size", "max_generations", "pixels", "mode")
    assert {k: getattr(config, k) for k in same} == {k: getattr(paper, k) for k in same}
    assert config.max_queries == paper.max_queries == 40_400


def test_another_search_starts_from_the_papers_budget():
    config = _config("--set", "search=cma-es")
    assert (config.search, config.mutation, config.init, config.max_queries) == ("cma-es", "rand/1", "paper", 40_400)
    assert _config("--set", "search='de'").mutation == "rand/1-snap-local"


def test_the_default_follows_the_studys_winner_per_setting():
    """rand/1-snap-local from corner colours, except targeted with 5+ pixels: best/1/exp."""
    for argv, operator in [
        ((), ("rand/1-snap-local", "none", "corners")),
        (("--pixels", "5"), ("rand/1-snap-local", "none", "corners")),
        (("--pixels", "3", "--mode", "targeted"), ("rand/1-snap-local", "none", "corners")),
        (("--pixels", "5", "--mode", "targeted"), ("best/1", "exp", "paper")),
        (("--set", "pixels=7", "--set", "mode=targeted"), ("best/1", "exp", "paper")),  # --set counts too
    ]:
        config = _config(*argv)
        assert (config.mutation, config.crossover, config.init) == operator, argv
        assert (config.max_queries, config.differential_weight, config.crossover_rate) == (40_400, 0.5, 0.9)


def test_an_operator_asked_for_replaces_the_default_whole():
    """No half-default mixtures: the fields not given are the paper's, not the default's."""
    config = _config("--pixels", "5", "--mode", "targeted", "--operator", "rand/1")
    assert (config.mutation, config.crossover, config.init) == ("rand/1", "none", "paper")
    config = _config("--operator", "best/2")
    assert (config.mutation, config.crossover, config.init) == ("best/2", "none", "paper")
    config = _config("--set", "init=corners")
    assert (config.mutation, config.init) == ("rand/1", "corners")
    # a parameter of the default operator is not another operator
    assert _config("--set", "differential_weight=0.7").mutation == "rand/1-snap-local"


# --- one default: the library's attack() and `deattack attack` -------------------------

def test_library_and_cli_share_one_default(monkeypatch):
    """attack() without a config runs default_config(), the CLI's config for no flags;
    preset="su2019" is the paper's in both."""
    import numpy as np

    from deattack.attack import api, default_config, paper_config
    from tests.attack import red_dot

    assert default_config() == _config()
    assert default_config(preset="su2019") == _config("--preset", "su2019") == paper_config()
    assert default_config(3, "targeted") == _config("--pixels", "3", "--mode", "targeted")
    seen = []

    class Stop(Exception):
        pass

    def spy(config, *args, **kwargs):
        seen.append(config)
        raise Stop

    monkeypatch.setattr(api, "SlotRunner", spy)
    images, labels = red_dot.grey_images(1), np.full(1, red_dot.TRUE_CLASS)
    for preset in (None, "su2019"):
        try:
            api.attack(red_dot.make_victim(), images, labels, preset=preset)
        except Stop:
            pass
    assert seen == [_config(), _config("--preset", "su2019")]


def test_a_preset_with_a_config_or_an_unknown_preset_is_refused():
    import numpy as np
    import pytest

    from deattack.attack import api, default_config, paper_config
    from tests.attack import red_dot

    with pytest.raises(ValueError, match="config or a preset"):
        api.attack(red_dot.make_victim(), red_dot.grey_images(1), np.full(1, red_dot.TRUE_CLASS),
                   paper_config(), preset="su2019")
    with pytest.raises(ValueError, match="preset='carlini' is unknown"):
        default_config(preset="carlini")
