"""The manual's command lines stay true: every `deattack ...` line of a bash block in
README.md and in the manual pages under docs/ (not the generated reports under
docs/results/) parses with the CLI's own parser, so a flag renamed or dropped fails
here, not for a user."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from deattack.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
MANUAL = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _commands(path: Path) -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith(".venv/bin/deattack "):
                    part = part[len(".venv/bin/"):]
                # "[...]" marks optional alternatives and "..." elided flags: not literal commands.
                if part.startswith("deattack ") and "[" not in part and "..." not in part:
                    commands.append(part)
    return commands


COMMANDS = [(path.relative_to(REPO).as_posix(), command) for path in MANUAL for command in _commands(path)]


def test_the_readme_shows_commands():
    assert len(_commands(REPO / "README.md")) >= 10


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}:{i}" for i, (w, _) in enumerate(COMMANDS)])
def test_every_manual_command_parses(where, command):
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.run), (where, command)


def test_the_readme_documents_every_record_field_and_output_file():
    """Issue 27, items 15 and 16: a user reads what each file and each record field is."""
    from deattack.attack.record import RECORD_FIELDS

    output = (REPO / "README.md").read_text().split("## Output", 1)[1].split("\n## ", 1)[0]
    table = [line for line in output.splitlines() if line.startswith("| `")]
    documented = {name for line in table for name in re.findall(r"`(\w+)`", line.split("|")[1])}
    extras = {"queries_evaluated", "first_success_query", "n_fooling"}  # the corner scan's (record.py)
    assert set(RECORD_FIELDS) | extras <= documented, (set(RECORD_FIELDS) | extras) - documented
    for name in ("config.json", "results.jsonl", "adversarial.npz", "examples.png", "adversarial_images()"):
        assert name in output, name
