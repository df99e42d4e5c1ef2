"""Strict numerics as in tests/sweep: dtype promotion raises; rank promotion is allowed
because the attack's population initialisers (used by de_attack and the driver) need it."""

from __future__ import annotations

import contextlib

import jax
import pytest


def numerics() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(jax.numpy_rank_promotion("allow"))
    stack.enter_context(jax.numpy_dtype_promotion("strict"))
    return stack


@pytest.fixture(autouse=True)
def strict_numerics():
    with numerics():
        yield
