"""Experiment configs are Python files: `configs/NAME.py` defines `get_config(variant="")`.

`load("configs/su2019.py:3px")` imports the file by path and calls get_config("3px")
(big_vision / flax-examples style; no global flags).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def load(spec: str, expected: type | None = None) -> Any:
    """Loads `path.py[:variant]`; the file must define get_config(variant), returning an
    instance of `expected` when that is given."""
    path_text, _, variant = spec.partition(":")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"deattack_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path} defines no get_config(variant)")
    try:
        config = module.get_config(variant)
    except TypeError as error:  # e.g. SweepConfig(bogus=1): "unexpected keyword argument 'bogus'"
        raise ValueError(f"config file {spec}: {error}") from None
    if expected is not None and not isinstance(config, expected):
        raise ValueError(f"{spec} returns {_article(type(config).__name__)}, not {_article(expected.__name__)}")
    return config


def _article(name: str) -> str:
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"
