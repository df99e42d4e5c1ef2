"""Peers of the benchmark: other one-pixel attacks run on the same weights and images.

Only `deattack bench` uses this package. `scipy_de` needs scipy alone (in the `[test]`
and `[bench]` extras); `torch_port` and `runners` need the `[bench]` extra (torch,
torchattacks, adversarial-robustness-toolbox) and are imported lazily, never by the
core, the tests or CI. `available()` says which peers can run here.
"""

from __future__ import annotations

import importlib.util

PEER_MODULES = {"scipy": ("scipy",), "torchattacks": ("torch", "torchattacks"), "art": ("torch", "art")}


def available() -> dict[str, bool]:
    """{peer name: its packages are importable}, without importing them."""
    return {name: all(importlib.util.find_spec(module) is not None for module in modules)
            for name, modules in PEER_MODULES.items()}
