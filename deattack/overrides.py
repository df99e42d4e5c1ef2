"""`--set key=value` overrides for frozen config dataclasses (configs are data)."""

from __future__ import annotations

import ast
import dataclasses
import typing
from collections.abc import Sequence
from typing import Any


def parse_value(text: str) -> Any:
    """Python literal if it parses as one (3, 0.5, (1, 3), None, True), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: Any, assignments: Sequence[str]) -> Any:
    """Returns `config` with each "a.b=value" applied; nested dataclasses by dotted path.

    Raises:
      ValueError: malformed assignment or unknown key (the message lists the known keys).
    """
    for assignment in assignments:
        if "=" not in assignment:
            raise ValueError(f"--set expects key=value, got {assignment!r}")
        key, raw = assignment.split("=", 1)
        config = _set_path(config, key.strip().split("."), parse_value(raw.strip()), key)
    return config


def _set_path(config: Any, path: list[str], value: Any, full_key: str) -> Any:
    names = [field.name for field in dataclasses.fields(config)]
    head = path[0]
    if head not in names:
        raise ValueError(f"unknown config key {full_key!r}; known keys: {', '.join(names)}")
    if len(path) > 1:
        return dataclasses.replace(config, **{head: _set_path(getattr(config, head), path[1:], value, full_key)})
    current = getattr(config, head)
    if isinstance(current, tuple) and not isinstance(value, tuple):
        value = (value,) if not isinstance(value, list) else tuple(value)
    hints = typing.get_type_hints(type(config))
    if hints.get(head) is float and isinstance(value, int):
        value = float(value)
    return dataclasses.replace(config, **{head: value})


def parse_named_options(spec: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    """The "name:key=value,key=value" syntax of augmentation and defense specs:
    "dead_pixels:k=1-3,p=0.5" -> ("dead_pixels", [("k=1-3", "k", "1-3"), ("p=0.5", "p", "0.5")]).

    Each option is (item as written, key, value), all stripped; value is None for an item
    without "=". The caller checks names, keys and values and words its errors.
    """
    name, _, rest = spec.strip().partition(":")
    options = []
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        options.append((item, key.strip(), value.strip() if equals else None))
    return name.strip(), options
