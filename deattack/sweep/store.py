"""The results store of a sweep: one SQLite file (stdlib sqlite3, WAL journal).

Tables:
  meta     key -> value: the sweep config (full JSON, and the results-relevant part
           that stores must share to be resumed or merged), the schema version.
  cells    one row a grid cell: id (stable hash of the resolved config), position in
           the grid, victim spec, model name, victim sha256 and metadata (accuracy,
           parameters), the resolved config JSON, units total, status.
  units    one row a finished (cell, image chunk): the images selected, those attacked
           (correctly classified), records written. Written in the same transaction as
           the chunk's result rows, so a unit is either wholly in the store or absent.
  results  one row a (cell, image_index, target), UNIQUE on that key; a column per
           record field (`pixels` as JSON text; unknown record fields go to `extra`).
  runs     one row a `sweep` / `merge` invocation: command, shard, host, log file.
  partial_results  the records of problems a unit in flight has finished (JSON), saved
           as they finish and deleted when the unit commits: not results (reports,
           exports and merges never read them), only what a stopped run resumes from.

A kill at any moment loses at most the problems in flight: SQLite's journal rolls back a
torn transaction, a rerun skips every unit already in `units`, and a unit it resumes
attacks only the problems not in `partial_results`. Each finished unit is
also checkpointed from the WAL into the main file, so the `.sqlite` file alone (what a
copy, a sync or a commit that skips the ignored `-wal` side file carries) holds every
unit a killed run had finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from deattack.attack.config import LAYOUT_FIELDS

SCHEMA_VERSION = "1"

# A column for each field of deattack.attack.record.Record (which says what each means),
# with its SQL type, in the table's column order (the schema's: never reorder).
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("image_index", "INTEGER NOT NULL"),
    ("target", "INTEGER NOT NULL"),
    ("true_label", "INTEGER"),
    ("success", "INTEGER"),
    ("status", "TEXT"),
    ("queries", "INTEGER"),
    ("generations", "INTEGER"),
    ("best_fitness", "REAL"),
    ("pixels", "TEXT"),  # JSON [[x, y, r, g, b], ...]
    ("adversarial_prediction", "INTEGER"),
    ("adversarial_confidence", "REAL"),
    ("target_confidence", "REAL"),
    ("true_confidence_after", "REAL"),
    ("original_prediction", "INTEGER"),
    ("original_confidence", "REAL"),
)
RECORD_FIELDS = tuple(name for name, _ in RESULT_COLUMNS)
# Columns that say what a cell is, joined onto every exported row.
CELL_EXPORT_FIELDS = ("victim", "model", "victim_sha256", "n_pixels", "mode", "targets", "fitness",
                      "mutation", "crossover", "adaptation", "differential_weight", "crossover_rate",
                      "population_size", "max_generations", "seed", "split")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
  cell_id TEXT PRIMARY KEY,
  position INTEGER NOT NULL,
  victim TEXT NOT NULL,
  model TEXT,
  victim_sha256 TEXT,
  victim_metadata TEXT,
  config TEXT NOT NULL,
  units_total INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS units (
  cell_id TEXT NOT NULL,
  chunk INTEGER NOT NULL,
  n_selected INTEGER NOT NULL,
  n_attacked INTEGER NOT NULL,
  attacked TEXT NOT NULL,
  n_records INTEGER NOT NULL,
  wall_s REAL,
  finished REAL,
  PRIMARY KEY (cell_id, chunk)
);
CREATE TABLE IF NOT EXISTS results (
  cell_id TEXT NOT NULL,
  {", ".join(f"{name} {kind}" for name, kind in RESULT_COLUMNS)},
  extra TEXT,
  UNIQUE (cell_id, image_index, target)
);
CREATE TABLE IF NOT EXISTS partial_results (
  cell_id TEXT NOT NULL,
  chunk INTEGER NOT NULL,
  image_index INTEGER NOT NULL,
  target INTEGER NOT NULL,
  record TEXT NOT NULL,
  elapsed_s REAL,
  PRIMARY KEY (cell_id, chunk, image_index, target)
);
CREATE TABLE IF NOT EXISTS runs (
  run_id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  started REAL,
  finished REAL,
  shard TEXT,
  command TEXT,
  host TEXT,
  pid INTEGER,
  log TEXT
);
"""

# Columns whose values must agree when two stores hold the same key (timings may differ).
_UNIT_COMPARED = ("n_selected", "n_attacked", "attacked", "n_records")
_CELL_COMPARED = ("position", "victim", "victim_sha256", "units_total")  # config: may differ in layout
_RESULT_COMPARED = (*RECORD_FIELDS, "extra")


# Stores written before "forward" and "devices" were known to be layout hold them in
# their sweep keys: keys are compared without any LAYOUT_FIELDS, so those stores resume
# and merge with new ones.
def _comparable(key: dict[str, Any]) -> dict[str, Any]:
    """A sweep key without the attack fields that may differ between runs of one sweep."""
    attack = key.get("attack")
    if not isinstance(attack, dict):
        return key
    return {**key, "attack": {k: v for k, v in attack.items() if k not in LAYOUT_FIELDS}}

class StoreError(ValueError):
    """A store that cannot be used as asked (another sweep, a conflict, not a store)."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)  # explicit BEGIN/COMMIT
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
    connection.execute("PRAGMA busy_timeout=60000")
    return connection


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Opens an existing store without writing to it: no schema upgrade, no journal-mode
    change, so a report leaves committed stores byte for byte as they were (SQLite may
    leave empty -wal / -shm side files, which git ignores)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0,
                                 isolation_level=None)
    connection.row_factory = sqlite3.Row
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = {"meta", "cells", "units", "results", "runs"} - tables
    if missing:
        connection.close()
        raise StoreError(f"{path} is not a results store (no tables {', '.join(sorted(missing))})")
    return connection


class Store:
    """An open results store. Use as a context manager, or call close().

    Args:
      path: the SQLite file (created with its folder when absent).
      create: False to refuse a path that is not a store yet (report / export / merge inputs).
      read_only: open an existing store for reading only (reports, exports, --reuse
        sources): nothing is written to it, not even the schema's newer tables, and any
        write raises sqlite3.OperationalError.
    """

    def __init__(self, path: str | os.PathLike, create: bool = True, read_only: bool = False):
        self.path = Path(path)
        if (read_only or not create) and not self.path.is_file():
            raise StoreError(f"{self.path} is not a results store (no such file)")
        try:
            if read_only:
                self.connection = _connect_read_only(self.path)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = _connect(self.path)
            self.connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a usable SQLite results store: {error}") from None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {row["key"]: row["value"] for row in self.connection.execute("SELECT key, value FROM meta")}

    def sweep_config(self) -> dict[str, Any] | None:
        text = self.meta().get("sweep_config")
        return json.loads(text) if text else None

    def sweep_key(self) -> dict[str, Any] | None:
        text = self.meta().get("sweep_key")
        return json.loads(text) if text else None

    def holds_sweep(self, sweep_key: dict[str, Any]) -> bool:
        """Whether the store is new or holds the sweep of this key (layout fields aside)."""
        saved = self.sweep_key()
        return saved is None or canonical_json(_comparable(saved)) == canonical_json(_comparable(sweep_key))

    def initialize(self, sweep_config: dict[str, Any], sweep_key: dict[str, Any]) -> None:
        """Writes the sweep's config into a new store, or checks an existing store holds
        the same sweep (same results-relevant key; layout fields such as slots may differ).

        Raises:
          StoreError: the store holds another sweep (the message names the differing keys).
        """
        with self.transaction() as connection:
            saved = self.sweep_key()
            if saved is None:
                connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("schema_version", SCHEMA_VERSION),
                    ("sweep_config", canonical_json(sweep_config)),
                    ("sweep_key", canonical_json(sweep_key)),
                    ("created", str(time.time())),
                ])
            elif not self.holds_sweep(sweep_key):
                raise StoreError(
                    f"{self.path} holds another sweep (differs in {differing_keys(saved, sweep_key)}); "
                    "use a new --store, or the same sweep config to resume")

    # --- cells and units --------------------------------------------------------------

    def register_cell(self, cell_id: str, position: int, victim: str, model: str | None,
                      victim_sha256: str | None, victim_metadata: dict[str, Any],
                      config: dict[str, Any], units_total: int) -> None:
        """Adds a cell, or checks the stored one has the same victim weights. (The id hashes
        the results-relevant config; the stored config may differ in device layout.)

        Raises:
          StoreError: the victim's weights changed since this cell's rows were written.
        """
        with self.transaction() as connection:
            row = connection.execute("SELECT * FROM cells WHERE cell_id = ?", (cell_id,)).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO cells (cell_id, position, victim, model, victim_sha256, victim_metadata,"
                    " config, units_total, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                    (cell_id, position, victim, model, victim_sha256,
                     canonical_json(victim_metadata), canonical_json(config), units_total))
            elif row["victim_sha256"] != victim_sha256:
                raise StoreError(
                    f"victim {victim!r} changed since {self.path} was written (sha256 "
                    f"{row['victim_sha256']} then, {victim_sha256} now); results would mix two "
                    "models: restore that checkpoint or use a new --store")

    def cells(self) -> list[dict[str, Any]]:
        rows = self.connection.execute("SELECT * FROM cells ORDER BY position").fetchall()
        cells = []
        for row in rows:
            cell = dict(row)
            cell["config"] = json.loads(cell["config"])
            cell["victim_metadata"] = json.loads(cell["victim_metadata"] or "{}")
            cells.append(cell)
        return cells

    def done_units(self) -> set[tuple[str, int]]:
        return {(row[0], int(row[1])) for row in self.connection.execute("SELECT cell_id, chunk FROM units")}

    def units(self) -> list[dict[str, Any]]:
        rows = self.connection.execute("SELECT * FROM units ORDER BY cell_id, chunk").fetchall()
        return [dict(row, attacked=json.loads(row["attacked"])) for row in rows]

    def commit_unit(self, cell_id: str, chunk: int, n_selected: int, attacked: Sequence[int],
                    records: Iterable[dict[str, Any]], wall_s: float) -> int:
        """Writes one finished unit (its result rows and its `units` row) atomically.

        Rows already present with equal values are skipped; a row that differs from the
        stored one for the same (cell, image, target) raises (nothing of the unit is written).

        Returns:
          the number of result rows the unit holds.
        """
        rows = [result_row(cell_id, record) for record in records]
        with self.transaction() as connection:
            _insert_results(connection, rows, source=f"unit ({cell_id}, chunk {chunk})")
            connection.execute(
                "INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cell_id, chunk, n_selected, len(attacked), canonical_json([int(i) for i in attacked]),
                 len(rows), wall_s, time.time()))
            _update_status(connection, [cell_id])
            connection.execute("DELETE FROM partial_results WHERE cell_id = ? AND chunk = ?", (cell_id, chunk))
        self.checkpoint_wal()
        return len(rows)

    # --- problems of unfinished units ----------------------------------------------------

    def save_partial(self, cell_id: str, chunk: int, records: Iterable[dict[str, Any]], elapsed_s: float) -> None:
        """Keeps the records of problems an unfinished unit has finished, so a run stopped
        inside the unit resumes without attacking them again (`partial`). They are not
        results: reports, exports and merges read committed units only."""
        rows = [(cell_id, chunk, int(r["image_index"]), int(r["target"]), canonical_json(r), elapsed_s)
                for r in records]
        if not rows:
            return
        with self.transaction() as connection:
            connection.executemany("INSERT OR REPLACE INTO partial_results VALUES (?, ?, ?, ?, ?, ?)", rows)

    def partial(self, cell_id: str, chunk: int) -> tuple[list[dict[str, Any]], float]:
        """The saved records of an unfinished unit and the unit's run time when the last
        of them was saved (0 when none)."""
        rows = self.connection.execute(
            "SELECT record, elapsed_s FROM partial_results WHERE cell_id = ? AND chunk = ? "
            "ORDER BY image_index, target", (cell_id, chunk)).fetchall()
        return [json.loads(row[0]) for row in rows], max((row[1] or 0.0 for row in rows), default=0.0)

    def partial_counts(self) -> dict[tuple[str, int], int]:
        """(cell id, chunk) -> problems saved by a stopped run, for every unfinished unit
        that has some. A store written before partial results existed has none."""
        if not self.connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'partial_results'").fetchone():
            return {}
        rows = self.connection.execute(
            "SELECT cell_id, chunk, COUNT(*) FROM partial_results WHERE NOT EXISTS (SELECT 1 FROM units WHERE "
            "units.cell_id = partial_results.cell_id AND units.chunk = partial_results.chunk) "
            "GROUP BY cell_id, chunk").fetchall()
        return {(row[0], int(row[1])): int(row[2]) for row in rows}

    def drop_partial_of_done_units(self) -> int:
        """Deletes saved problems of units that are committed (e.g. copied from another
        store since); returns how many."""
        with self.transaction() as connection:
            return connection.execute(
                "DELETE FROM partial_results WHERE EXISTS (SELECT 1 FROM units WHERE units.cell_id = "
                "partial_results.cell_id AND units.chunk = partial_results.chunk)").rowcount

    def checkpoint_wal(self) -> None:
        """Copies committed pages from the WAL into the main file (PASSIVE: never waits on
        other shards' readers or writers; what they block is copied at a later checkpoint)."""
        self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # --- runs -------------------------------------------------------------------------

    def start_run(self, kind: str, command: str, shard: str | None = None, log: str | None = None) -> int:
        with self.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO runs (kind, started, shard, command, host, pid, log) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, time.time(), shard, command, socket.gethostname(), os.getpid(), log))
            return int(cursor.lastrowid)

    def finish_run(self, run_id: int) -> None:
        with self.transaction() as connection:
            connection.execute("UPDATE runs SET finished = ? WHERE run_id = ?", (time.time(), run_id))

    def runs(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.connection.execute("SELECT * FROM runs ORDER BY run_id")]

    # --- reading ----------------------------------------------------------------------

    def results(self, cell_id: str | None = None) -> list[dict[str, Any]]:
        """Result rows as records (success as bool, pixels decoded), with `cell_id`."""
        query = "SELECT * FROM results"
        arguments: tuple = ()
        if cell_id is not None:
            query += " WHERE cell_id = ?"
            arguments = (cell_id,)
        query += " ORDER BY cell_id, image_index, target"
        return [row_to_record(row) for row in self.connection.execute(query, arguments)]

    def count(self, table: str = "results") -> int:
        if table not in ("results", "cells", "units", "runs", "partial_results"):
            raise ValueError(f"unknown table {table!r}")
        return int(self.connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def result_row(cell_id: str, record: dict[str, Any]) -> tuple:
    """A record as a `results` row: (cell_id, RECORD_FIELDS..., extra)."""
    values = []
    for name in RECORD_FIELDS:
        value = record.get(name)
        if name == "pixels":
            value = canonical_json(value if value is not None else [])
        elif name == "success":
            value = int(bool(value))
        values.append(value)
    extra = {k: v for k, v in record.items() if k not in RECORD_FIELDS and k != "cell_id"}
    return (cell_id, *values, canonical_json(extra) if extra else None)


def row_to_record(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    record["success"] = bool(record["success"])
    record["pixels"] = json.loads(record["pixels"]) if record["pixels"] else []
    extra = record.pop("extra")
    if extra:
        record.update(json.loads(extra))
    return record


_RESULT_NAMES = ("cell_id", *RECORD_FIELDS, "extra")
_INSERT_RESULT = (f"INSERT OR IGNORE INTO results ({', '.join(_RESULT_NAMES)}) "
                  f"VALUES ({', '.join('?' * len(_RESULT_NAMES))})")


def _insert_results(connection: sqlite3.Connection, rows: list[tuple], source: str) -> None:
    for row in rows:
        cursor = connection.execute(_INSERT_RESULT, row)
        if cursor.rowcount == 0:  # the key is there: equal values are a duplicate, others a conflict
            stored = connection.execute(
                f"SELECT {', '.join(_RESULT_NAMES)} FROM results WHERE cell_id = ? AND image_index = ? "
                "AND target = ?", (row[0], row[1], row[2])).fetchone()
            if tuple(stored) != row:
                differing = [name for name, a, b in zip(_RESULT_NAMES, stored, row) if a != b]
                raise StoreError(f"{source}: conflicting result for cell {row[0]}, image {row[1]}, "
                                 f"target {row[2]} (differs in {differing})")


def _update_status(connection: sqlite3.Connection, cell_ids: Iterable[str] | None = None) -> None:
    query = ("UPDATE cells SET status = CASE WHEN (SELECT COUNT(*) FROM units u WHERE u.cell_id = "
             "cells.cell_id) >= units_total THEN 'done' WHEN (SELECT COUNT(*) FROM units u WHERE "
             "u.cell_id = cells.cell_id) > 0 THEN 'partial' ELSE 'pending' END")
    if cell_ids is None:
        connection.execute(query)
    else:
        connection.executemany(query + " WHERE cell_id = ?", [(c,) for c in cell_ids])


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = []
        for key in sorted(set(a) | set(b)):
            keys.extend(differing_keys(a.get(key), b.get(key), f"{prefix}{key}."))
        return keys
    return [] if a == b else [prefix.rstrip(".") or "(root)"]


# --- merge ----------------------------------------------------------------------------


# --- export ---------------------------------------------------------------------------
