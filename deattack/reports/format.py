"""Formatting shared by every report: percentages, numbers, Markdown and LaTeX tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pixel_scale(pixels: int, height: int, width: int) -> str:
    """"40 of 1,024 pixels (3.9 %)": how much of an H x W image an attack may change."""
    return f"{pixels} of {height * width:,} pixels ({100 * pixels / (height * width):.1f} %)"


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, Any]]) -> str:
    lines = ["| " + " | ".join(name for name, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fn(row) for _, fn in columns) + " |" for row in rows]
    return "\n".join(lines)


def _latex_escape(text: str) -> str:
    text = text.replace("\\", "\0")  # backslashes last, so their braces are not escaped
    for special in "&%_#${}":
        text = text.replace(special, "\\" + special)
    return text.replace("\0", r"\textbackslash{}")


def latex_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, Any]], caption: str) -> str:
    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{_latex_escape(caption)}}}",
             r"\begin{tabular}{" + "l" * len(columns) + "}", r"\toprule",
             " & ".join(_latex_escape(name) for name, _ in columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(fn(row)) for _, fn in columns) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)
