"""Strict numerics as in tests/sweep: dtype promotion raises; rank promotion is allowed
because the attack's population initialisers (used by de_attack and the driver) need it."""

from __future__ import annotations

import contextlib

import pytest

from tests import support


def numerics() -> contextlib.ExitStack:
    return support.strict_numerics("allow")


@pytest.fixture(autouse=True)
def strict_numerics():
    with numerics():
        yield
