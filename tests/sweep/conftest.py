"""The sweep tests run with strict numerics (as tests/attack, rank promotion allowed
because the attack's population initialisers need it). The toy sweep's fixtures
(toy_inputs, run_toy, reference_store) are in tests/conftest.py: the report and CLI
tests share them."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from tests import support


def numerics() -> contextlib.ExitStack:
    return support.strict_numerics("allow")


@pytest.fixture(autouse=True)
def strict_numerics():
    with numerics():
        yield


def table_rows(path, table: str = "results") -> list[tuple]:
    """A table's rows in key order, without timing columns."""
    queries = {
        "results": "SELECT * FROM results ORDER BY cell_id, image_index, target",
        "units": "SELECT cell_id, chunk, n_selected, n_attacked, attacked, n_records FROM units "
                 "ORDER BY cell_id, chunk",
        "cells": "SELECT cell_id, position, victim, model, victim_sha256, victim_metadata, config, "
                 "units_total, status FROM cells ORDER BY position",
    }
    connection = sqlite3.connect(str(path))
    try:
        return [tuple(row) for row in connection.execute(queries[table])]
    finally:
        connection.close()
