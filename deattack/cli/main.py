"""`deattack train | eval | attack | bench | sweep | merge | report | export | defenses`.

One entry point; each command group registers its subcommands from its own module
(deattack.cli.train, .attack, .bench, .sweep, .defenses). Progress bars and printing live
in the CLI only; everything else is importable.
"""

from __future__ import annotations

import argparse
import sys

from deattack import __version__

from deattack.cli.attack import add_attack_commands
from deattack.cli.bench import add_bench_command
from deattack.cli.defenses import add_defense_commands
from deattack.cli.sweep import add_sweep_commands
from deattack.cli.train import add_train_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deattack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"deattack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_commands(commands)
    add_attack_commands(commands)
    add_bench_command(commands)
    add_sweep_commands(commands)
    add_defense_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; a bad input is one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    args.argv = argv  # the command as typed, recorded in stores and report headers
    try:
        return args.run(args)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"deattack {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
