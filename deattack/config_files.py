"""Experiment configs are Python files: `configs/NAME.py` defines `get_config(variant="")`.

`load("configs/su2019.py:3px")` imports the file by path and calls get_config("3px")
(big_vision / flax-examples style; no global flags).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def load(spec: str) -> Any:
    """Loads `path.py[:variant]`; the file must define get_config(variant)."""
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
        return module.get_config(variant)
    except TypeError as error:  # e.g. SweepConfig(bogus=1): "unexpected keyword argument 'bogus'"
        raise ValueError(f"config file {spec}: {error}") from None
