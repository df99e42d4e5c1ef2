"""`deattack --help` and every command's help (issue 27 item 17): every flag explains
itself and shows its default, --model lists the shipped victims and architectures."""

from __future__ import annotations

import argparse

import pytest

from deattack.cli import main as cli
from deattack.models import MODELS
from deattack.victims.loading import shipped_victims

PARSER = cli.build_parser()
COMMANDS = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices
_NO_DEFAULT = (None, False, [], argparse.SUPPRESS)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_flag_has_a_help_text_and_shows_its_default(name):
    parser = COMMANDS[name]
    text = _flat(parser.format_help())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0] if action.option_strings else action.dest
        assert action.help and len(action.help) > 8, f"{name} {flag}: no help text"
        if action.default not in _NO_DEFAULT:
            assert f"(default: {action.default})" in text, f"{name} {flag}: default {action.default!r} not shown"


def test_no_empty_default_is_printed():
    for name, parser in COMMANDS.items():
        assert "(default: None)" not in parser.format_help(), name
        assert "(default: False)" not in parser.format_help(), name


@pytest.mark.parametrize("name", ["attack", "eval", "train", "bench"])
def test_model_lists_the_shipped_victims_and_architectures(name):
    text = _flat(COMMANDS[name].format_help())
    for victim in shipped_victims():
        assert victim in text, f"{name}: shipped victim {victim} not listed"
    if name == "train":
        for architecture in MODELS:
            assert architecture in text, f"{name}: architecture {architecture} not listed"


def test_the_top_help_is_for_users():
    text = _flat(PARSER.format_help())
    assert "deattack.cli" not in text  # no module map: that is docs/architecture.md's
    for command in ("attack", "sweep", "report", "defenses", "train", "eval", "bench"):
        assert command in text
    assert "deattack COMMAND --help" in text
