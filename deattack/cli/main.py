"""deattack: few-pixel (L0) adversarial attacks on image classifiers, every candidate of
many images scored in one batched forward pass (JAX: GPU, TPU or CPU).

Start with `deattack attack --model resnet20 --pixels 1 --images 10` (results folder,
summary, figure), `deattack eval` for a victim's accuracy, `deattack sweep` + `deattack
report` for a grid of attacks and its tables. Run `deattack COMMAND --help` for a
command's flags; the README is the manual.
"""

from __future__ import annotations

import argparse
import sys

from deattack import __version__

from deattack.cli.attack import add_attack_commands
from deattack.cli.bench import add_bench_command
from deattack.cli.common import HelpFormatter
from deattack.cli.defenses import add_defense_commands
from deattack.cli.robustness import add_robustness_command
from deattack.cli.sweep import add_sweep_commands
from deattack.cli.train import add_train_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deattack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"deattack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_commands(commands)
    add_attack_commands(commands)
    add_bench_command(commands)
    add_sweep_commands(commands)
    add_defense_commands(commands)
    add_robustness_command(commands)
    for command in commands.choices.values():
        command.formatter_class = HelpFormatter  # every flag's default shown, in one place
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
