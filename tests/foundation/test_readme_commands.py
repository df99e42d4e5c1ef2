"""The README's command lines stay true: every `deattack ...` line of its "Use" block
parses with the CLI's own parser (flags renamed or dropped fail here, not for a user)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from deattack.cli.main import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _use_commands() -> list[str]:
    text = README.read_text()
    use = text[text.index("## Use"):]
    block = re.search(r"```bash\n(.*?)```", use, re.S).group(1)
    joined = block.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split("  #", 1)[0].strip()
        for part in line.split("&&"):
            part = part.strip()
            # "[...]" marks optional alternatives and "..." elided flags: not literal commands.
            if part.startswith("deattack ") and "[" not in part and "..." not in part:
                commands.append(part)
    return commands


def test_the_use_block_has_commands():
    assert len(_use_commands()) >= 10


@pytest.mark.parametrize("command", _use_commands())
def test_every_readme_command_parses(command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.run)
