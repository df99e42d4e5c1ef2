"""Helpers every command group shares: loading a config file with --set applied, the
command line as typed (recorded in stores, logs and report headers), --help's form, and
the progress bar of the long commands."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from deattack import config_files
from deattack.models import MODELS
from deattack.overrides import apply_overrides
from deattack.victims.loading import shipped_victims


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every flag's help ends with its default, when it has one
    (a None default means "from the config", which the help text says in words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" not in text and action.default not in (None, False, [], argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def model_help(what: str = "the victim") -> str:
    """--model's help: the shipped victims and the architectures, named."""
    return (f"{what}: a shipped victim ({', '.join(shipped_victims()) or 'none'}), a checkpoint path, or "
            f"DEFENSE+NAME (median3+resnet20); `deattack train --model ARCH` trains one of the architectures "
            f"{', '.join(MODELS)}")


def command_line(args) -> str:
    """The command as typed (recorded in the store, the log and report headers)."""
    argv = getattr(args, "argv", None)
    return " ".join(shlex.quote(a) for a in ["deattack", *(sys.argv[1:] if argv is None else argv)])


def load_config(spec: str, expected: type, assignments: Sequence[str] = ()):
    """`configs/FILE.py[:variant]`, which must return an `expected`, with `--set key=value`s
    applied; ValueError naming the problem otherwise."""
    return apply_overrides(config_files.load(spec, expected), assignments)


def read_note(path: str | None) -> str:
    """The text of a report's --note FILE ("" without one)."""
    if path is None:
        return ""
    if not Path(path).is_file():
        raise ValueError(f"--note {path}: no such file")
    return Path(path).read_text()


class ProgressBar:
    """One progress line on stderr for a long command (attack, sweep, defenses).

    The tqdm bar is made by the first `show`, when the total is known, so a command that
    fails before any work, or finds it all done, prints no empty "0it [00:00, ?it/s]"
    line. The rate and the ETA are the caller's, from the library's progress numbers;
    tqdm's own item rate is never shown (it counted a resume's finished items as done in
    no time: "11001 problem/s").
    """

    def __init__(self, unit: str, rate_unit: str | None = None, desc: str = "", scale: bool = False):
        self.unit, self.rate_unit, self.desc, self.scale = unit, rate_unit or unit, desc, scale
        self.bar = None

    def show(self, done: int, total: int, rate: float, eta_s: float | None, details: str = "") -> None:
        """`done` of `total` (which may shrink), `rate` per second, the ETA in seconds (None:
        not known yet) and the caller's details, e.g. "3/10 problems, 2 fooled"."""
        speed = tqdm.format_sizeof(rate) if self.scale else f"{rate:.2f}"
        eta = "?" if eta_s is None else tqdm.format_interval(eta_s)
        postfix = ", ".join(part for part in (f"{speed} {self.rate_unit}/s", details, f"ETA {eta}") if part)
        if self.bar is None:
            # miniters=0: redraw on time only (every mininterval), whatever the counts do.
            self.bar = tqdm(total=total, initial=done, unit=self.unit, unit_scale=self.scale, desc=self.desc or None,
                            postfix=postfix, file=sys.stderr, dynamic_ncols=True, miniters=0,
                            mininterval=1.0 if sys.stderr.isatty() else 30.0,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} {unit}{postfix} [{elapsed}]")
            return
        self.bar.total, self.bar.n = total, done
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(0)

    def close(self) -> None:
        """Draws the last state and ends the line (nothing if never shown)."""
        if self.bar is not None:
            self.bar.close()


def show_sweep_progress(bar: ProgressBar, progress) -> None:
    """A sweep's (deattack.sweep.run.SweepProgress) images done of its shard's, its cells
    and units, and its own images/s and ETA (this run's images only: resumed ones are not
    a rate)."""
    bar.show(progress.images_done, progress.images_total, progress.images_per_s, progress.eta_s,
             f"cells {progress.cells_done}/{progress.cells_total}, units {progress.units_done}/{progress.units_total}")
