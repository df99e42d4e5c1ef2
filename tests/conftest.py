"""Shared test setup: CIFAR-10 from ../shared/tensorflow_datasets when present, the
test split, and the toy sweep (tests/sweep/toy.py) that the sweep, report and CLI tests
compare against, run once a session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_SHARED_DATA = REPO.parent / "shared" / "tensorflow_datasets"
if "TFDS_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["TFDS_DATA_DIR"] = str(_SHARED_DATA)

from tests.support import requires_cifar10  # noqa: E402,F401  (after TFDS_DATA_DIR is set)


@pytest.fixture(scope="session")
def cifar_test():
    from deattack import data

    return data.load_split("test")


@pytest.fixture(scope="session")
def toy_inputs() -> dict:
    from tests.sweep import toy

    return toy.sweep_inputs()


@pytest.fixture(scope="session")
def run_toy(toy_inputs):
    """run_sweep on the toy victim and images (session fixtures need the numerics here:
    they are part of jit's cache key, so every run shares the compilations)."""

    from deattack.sweep.run import run_sweep
    from tests import support

    def run(config, store, **kwargs):
        with support.strict_numerics("allow"):
            return run_sweep(config, store, **toy_inputs, **kwargs)

    return run


@pytest.fixture(scope="session")
def reference_store(tmp_path_factory, run_toy):
    """The toy sweep, uninterrupted and unsharded."""
    from tests.sweep import toy

    path = tmp_path_factory.mktemp("reference") / "toy.sqlite"
    run_toy(toy.CONFIG, path, command="reference")
    return path
