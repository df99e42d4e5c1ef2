"""Attack results: one record per (image, target), an append-only JSONL store that
survives kills (a rerun skips what is done), and the summary numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from deattack.io_checks import check_output_dir

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.json"


def problem_id(record: dict[str, Any]) -> tuple[int, int]:
    """The (image_index, target) a record answers: one record per problem."""
    return int(record["image_index"]), int(record["target"])


def _differences(saved: Any, wanted: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as "path: folder's value -> this call's value"."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        return [line for key in sorted(set(saved) | set(wanted))
                for line in _differences(saved.get(key), wanted.get(key), f"{path}.{key}" if path else key)]
    return [] if saved == wanted else [f"{path}: {saved!r} in the folder, {wanted!r} now"]


class ResultsFolder:
    """An output folder: config.json (what was run) + results.jsonl (one line a problem),
    both written from the first record on.

    Lines are appended and fsynced as problems finish, so a killed run keeps every
    finished problem; a torn last line (killed mid-write) is dropped on reopening.
    """

    def __init__(self, folder: str | os.PathLike, run_info: dict[str, Any]):
        self.folder = check_output_dir(folder, "output folder")  # OutputError, a ValueError
        self.run_info = run_info
        self._created = False
        self._check_saved_config()
        self.path = self.folder / RESULTS_FILE
        self.records = self._read_and_repair()

    def _check_saved_config(self) -> None:
        """A config.json already there must be this call's: same attack, same victim."""
        config_path = self.folder / CONFIG_FILE
        if not config_path.exists():
            return
        try:
            saved = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{config_path} is not valid JSON ({error}); move it away") from None
        wanted = json.loads(json.dumps(self.run_info))
        if saved != wanted:
            changed = "; ".join(_differences(saved, wanted)[:6])
            raise ValueError(
                f"{self.folder} holds results of another attack setting ({changed}); "
                "use a new --out folder, or the same settings to resume")

    def _create(self) -> None:
        """The folder and config.json, made by the first append, not on opening: an attack
        that fails before its first record (a compile error, an interrupt) leaves no
        folder that holds nothing but its config."""
        if self._created:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.folder / CONFIG_FILE, "x") as stream:
                stream.write(json.dumps(self.run_info, indent=2, sort_keys=True) + "\n")
        except FileExistsError:  # there on opening, or another call's since: it must match
            self._check_saved_config()
        self._created = True

    def _read_and_repair(self) -> list[dict[str, Any]]:
        """Reads complete records; repairs what a kill can leave behind.

        Everything from the first line that does not parse is a torn write: it is
        truncated away (and recomputed on resume). A last record that parses but lost
        its newline is kept and terminated, so the next append starts a new line.
        """
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        records, kept_bytes, terminate = [], 0, False
        lines = raw.split(b"\n")
        for position, line in enumerate(lines):
            is_last = position == len(lines) - 1
            if line.strip():
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):  # torn or foreign bytes
                    break
                if not isinstance(record, dict) or not {"image_index", "target"} <= record.keys():
                    break
                records.append(record)
                terminate = is_last
            kept_bytes += len(line) + (0 if is_last else 1)
        if kept_bytes < len(raw):
            with open(self.path, "r+b") as stream:
                stream.truncate(kept_bytes)
        if terminate:
            with open(self.path, "ab") as stream:
                stream.write(b"\n")
        unique = {problem_id(r): r for r in records}
        return list(unique.values())

    def completed(self) -> set[tuple[int, int]]:
        return {problem_id(r) for r in self.records}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        if not records:
            return
        self._create()
        with open(self.path, "a") as stream:
            for record in records:
                stream.write(json.dumps(record, sort_keys=True) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        self.records.extend(records)


def summarize(records: list[dict[str, Any]], wall_s: float | None = None,
              queries_run: int | None = None) -> dict[str, Any]:
    """Success rate and query statistics over attacked problems.

    queries_mean/median are over all attacked problems (a failure costs the whole
    budget); queries_median_success over successes only. queries_per_s uses the
    queries charged during this call (`queries_run`) when given.
    """
    attacked = [r for r in records if r["status"] != "nonfinite_logits"]
    successes = [r for r in attacked if r["success"]]
    queries = np.asarray([r["queries"] for r in attacked], dtype=np.float64)
    success_queries = np.asarray([r["queries"] for r in successes], dtype=np.float64)
    summary = {
        "n_images": len({r["image_index"] for r in records}),
        "n_problems": len(records),
        "n_attacked": len(attacked),
        "n_success": len(successes),
        "success_rate": len(successes) / len(attacked) if attacked else 0.0,
        "queries_mean": float(queries.mean()) if queries.size else 0.0,
        "queries_median": float(np.median(queries)) if queries.size else 0.0,
        "queries_median_success": float(np.median(success_queries)) if success_queries.size else None,
        "mean_adversarial_confidence": (
            float(np.mean([r["adversarial_confidence"] for r in successes])) if successes else None),
        "n_nonfinite": len(records) - len(attacked),
    }
    if wall_s is not None:
        summary["wall_s"] = round(wall_s, 3)
        total = queries_run if queries_run is not None else int(queries.sum())
        summary["queries_per_s"] = round(total / wall_s, 1) if wall_s > 0 else None
    return summary
