"""Merging sweep stores (shards run on other devices or machines) into one, refusing
conflicting results, and exporting a store's records as CSV or Parquet rows."""

from __future__ import annotations

import csv
import os
import socket
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deattack.sweep.store import (
    _CELL_COMPARED,
    _RESULT_COMPARED,
    _RESULT_NAMES,
    _UNIT_COMPARED,
    CELL_EXPORT_FIELDS,
    RECORD_FIELDS,
    Store,
    StoreError,
    _comparable,
    _update_status,
    canonical_json,
    differing_keys,
)


def merge(out: str | os.PathLike, inputs: Sequence[str | os.PathLike], command: str = "") -> dict[str, int]:
    """Combines stores of one sweep (e.g. its shards) into `out`.

    Identical rows are kept once; all inputs (and `out`, when it exists) must hold the
    same sweep. The merge is written to a temporary file that replaces `out` only when
    every input went in, so a refused or killed merge leaves `out` as it was.

    Returns:
      counts of cells, units and result rows in `out`.

    Raises:
      StoreError: an input is not a store, holds another sweep, or holds a row that
        conflicts with another input's row for the same (cell, image, target).
    """
    out = Path(out)
    paths = [Path(p) for p in inputs]
    config, key = _common_sweep(out, paths)
    temporary = out.with_name(f".{out.name}.merging-{os.getpid()}")
    _delete_sqlite_files(temporary, ("", "-wal", "-shm"))
    try:
        if out.exists():
            _copy_store(out, temporary)
        counts = _merge_into(temporary, config, key, paths, command or f"merge {out} {' '.join(map(str, paths))}")
        os.replace(temporary, out)
        _delete_sqlite_files(out, ("-wal", "-shm"))
    finally:
        _delete_sqlite_files(temporary, ("", "-wal", "-shm"))
    return counts


def _common_sweep(out: Path, paths: Sequence[Path]) -> tuple[Any, Any]:
    """(sweep config, sweep key) the inputs (and `out`, when it exists) all hold; refuses
    no inputs, an input that is the output, and stores of different sweeps."""
    if not paths:
        raise StoreError("merge needs at least one input store")
    resolved_out = out.resolve()
    for path in paths:
        if path.resolve() == resolved_out:
            raise StoreError(f"input {path} is the output; merge into a new file")
    keys, configs = [], []
    for path in paths + ([out] if out.exists() else []):
        with Store(path, create=False) as store:
            key, config = store.sweep_key(), store.sweep_config()
        if key is None:
            raise StoreError(f"{path} holds no sweep (empty or not a sweep store)")
        if keys and canonical_json(_comparable(key)) != canonical_json(_comparable(keys[0][1])):
            raise StoreError(f"{path} holds another sweep than {keys[0][0]} (differs in "
                             f"{differing_keys(keys[0][1], key)}); refusing to merge")
        keys.append((path, key))
        configs.append(config)
    return configs[0], keys[0][1]


def _delete_sqlite_files(path: Path, suffixes: Sequence[str]) -> None:
    """Deletes the SQLite files path + suffix that exist ("" the database, "-wal", "-shm")."""
    for suffix in suffixes:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _copy_store(source: Path, destination: Path) -> None:
    """Copies the store at `source` into a new SQLite file at `destination`."""
    with Store(source, create=False) as existing:  # a consistent copy, WAL included
        target = sqlite3.connect(str(destination))
        existing.connection.backup(target)
        target.close()


def _merge_into(path: Path, config: Any, key: Any, inputs: Sequence[Path], command: str) -> dict[str, int]:
    """Merges every input into the store at `path` and records the merge as a run;
    returns its counts of cells, units and result rows."""
    with Store(path) as store:
        store.initialize(config, key)
        for source in inputs:
            _merge_one(store, source)
        with store.transaction() as connection:
            _update_status(connection)
            connection.execute(
                "INSERT INTO runs (kind, started, finished, shard, command, host, pid, log) "
                "VALUES ('merge', ?, ?, NULL, ?, ?, ?, NULL)",
                (time.time(), time.time(), command, socket.gethostname(), os.getpid()))
        counts = {table: store.count(table) for table in ("cells", "units", "results")}
        store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


def _conflicts(connection: sqlite3.Connection, table: str, key: Sequence[str],
               compared: Sequence[str]) -> sqlite3.Row | None:
    on = " AND ".join(f"m.{k} = s.{k}" for k in key)
    differ = " OR ".join(f"m.{c} IS NOT s.{c}" for c in compared)
    return connection.execute(
        f"SELECT {', '.join('s.' + k for k in key)} FROM src.{table} s JOIN main.{table} m ON {on} "
        f"WHERE {differ} LIMIT 1").fetchone()


def _merge_one(store: Store, path: Path) -> None:
    with Store(path, create=False):  # a store (not any file); ATTACH below reads its WAL too
        pass
    connection = store.connection
    connection.execute("ATTACH DATABASE ? AS src", (str(path),))
    try:
        with store.transaction():
            for table, key, compared in (("cells", ("cell_id",), _CELL_COMPARED),
                                         ("units", ("cell_id", "chunk"), _UNIT_COMPARED),
                                         ("results", ("cell_id", "image_index", "target"), _RESULT_COMPARED)):
                clash = _conflicts(connection, table, key, compared)
                if clash is not None:
                    where = ", ".join(f"{k}={clash[i]!r}" for i, k in enumerate(key))
                    raise StoreError(f"{path}: {table} row ({where}) conflicts with another input's; "
                                     "refusing to merge")
            connection.execute("INSERT OR IGNORE INTO main.cells SELECT * FROM src.cells")
            connection.execute("INSERT OR IGNORE INTO main.units SELECT * FROM src.units")
            columns = ", ".join(_RESULT_NAMES)
            connection.execute(f"INSERT OR IGNORE INTO main.results ({columns}) SELECT {columns} FROM src.results")
            connection.execute(
                "INSERT INTO main.runs (kind, started, finished, shard, command, host, pid, log) "
                "SELECT kind, started, finished, shard, command, host, pid, log FROM src.runs ORDER BY run_id")
    finally:
        connection.execute("DETACH DATABASE src")


def export_rows(store: Store) -> list[dict[str, Any]]:
    """Every result row joined with what its cell is (victim, pixel count, mode, operators...).
    `pixels` stays JSON text; `n_pixels` is the pixel count K."""
    cells = {cell["cell_id"]: cell for cell in store.cells()}
    rows = []
    for row in store.connection.execute(
            f"SELECT {', '.join(_RESULT_NAMES)} FROM results ORDER BY cell_id, image_index, target"):
        row = dict(row)
        cell = cells[row["cell_id"]]
        attack = cell["config"]["attack"]
        described = {
            "victim": cell["victim"], "model": cell["model"], "victim_sha256": cell["victim_sha256"],
            "n_pixels": attack["pixels"], "split": cell["config"]["images"]["split"],
            **{k: attack[k] for k in CELL_EXPORT_FIELDS if k in attack},
        }
        rows.append({"cell_id": row["cell_id"], **{k: described.get(k) for k in CELL_EXPORT_FIELDS},
                     **{k: row[k] for k in RECORD_FIELDS}, "extra": row["extra"]})
    return rows


def export(store_path: str | os.PathLike, out: str | os.PathLike, format: str | None = None) -> Path:
    """Writes every result row (with its cell's description) to CSV or Parquet.

    Args:
      format: "csv" or "parquet"; default from `out`'s suffix. Parquet needs pyarrow.

    Returns:
      the written path.
    """
    out = Path(out)
    format = format or ("parquet" if out.suffix == ".parquet" else "csv")
    if format not in ("csv", "parquet"):
        raise ValueError(f"format={format!r} is unknown; known: csv, parquet")
    with Store(store_path, read_only=True) as store:
        rows = export_rows(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["cell_id", *CELL_EXPORT_FIELDS, *RECORD_FIELDS, "extra"]
    if format == "parquet":
        try:
            import pyarrow
            import pyarrow.parquet
        except ImportError:
            raise ValueError("Parquet export needs pyarrow (pip install pyarrow); use --format csv") from None
        table = pyarrow.Table.from_pylist(rows) if rows else pyarrow.table({c: [] for c in columns})
        pyarrow.parquet.write_table(table, out)
        return out
    with open(out, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return out
