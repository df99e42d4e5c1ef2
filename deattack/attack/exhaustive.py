"""Exhaustive one-pixel search over the colour cube's corners: a baseline for the DE attack.

Every location (x, y) of an H x W image x the 8 corners of the colour cube
({0, 255}^3) is one candidate: 32 x 32 x 8 = 8,192 for CIFAR-10. AESOP (Appl. Sci.
2023) searches one-pixel attacks exhaustively; restricting colours to the corners
keeps it to 8,192 queries an image, and tells for each image whether any saturated
pixel fools the victim at all (DE searches all 256^3 colours, so it can succeed
where this fails, but rarely does: saturated colours are the strong ones).

Candidates are scored by the attack's own fitness (`engine.CandidateFitness`: the
same microbatched, jitted forward, which skips finished problems), S problems at a
time, CHUNK candidates a call. Each problem scans the candidates in its own random
order, default_rng([seed, image index, target + 1]).permutation(8192), so its
queries to success are those of sampling corner pixels without replacement, an
honest anytime baseline (a raster order would favour images whose weak pixel is
near the top).

Queries are counted exactly as a sequential scan spends them:
  stop_early=True (the default, and what `attack(..., search="exhaustive")` runs):
    a problem stops at its first fooling candidate; `queries` = its position in the
    scan order + 1, or 8,192 when none fools. The rest of the CHUNK holding the
    first success is evaluated (one batched call) but not charged; the record's
    `queries_evaluated` says how many forward passes really ran.
  stop_early=False: all 8,192 candidates of every problem; `queries` = 8,192,
    `first_success_query` = the early-stopping count and `n_fooling` = how many
    corner pixels fool the victim.
Success is re-verified like the DE attack's (SlotRunner's independent forward pass).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deattack.attack.config import AttackConfig
from deattack.attack.fitness import CandidateFitness, make_fitness
from deattack.attack.problems import Problem, ProblemArrays, bucket_size, problem_arrays
from deattack.attack.runner import Progress
from deattack.attack.verify import Verifier

# The 8 corners of the colour cube; corner c has red = bit 2, green = bit 1, blue = bit 0.
CORNERS = np.asarray(list(itertools.product((0.0, 255.0), repeat=3)), np.float32)
CHUNK = 1024  # candidates of each problem per jitted call


def corner_candidates(height: int = 32, width: int = 32) -> np.ndarray:
    """Every location x corner as genes (x + 1/2, y + 1/2, r, g, b).

    Returns:
      float32 [H * W * 8, 5] in raster order: row (y * W + x) * 8 + c is pixel
      (x, y) with colour CORNERS[c]. Coordinates sit at cell centres, so decoding
      (floor) gives exactly (x, y).
    """
    rows, columns, corners = np.meshgrid(np.arange(height), np.arange(width), np.arange(len(CORNERS)),
                                         indexing="ij")
    coordinates = np.stack([columns.ravel(), rows.ravel()], axis=1).astype(np.float32) + 0.5
    return np.concatenate([coordinates, CORNERS[corners.ravel()]], axis=1)


def scan_order(seed: int, image_index: int, target: int, count: int) -> np.ndarray:
    """The problem's own random order of the `count` candidates (int64 [count])."""
    return np.random.default_rng([int(seed), int(image_index), int(target) + 1]).permutation(count)


@functools.partial(jax.jit, static_argnames=("fitness",))
def _evaluate(fitness: CandidateFitness, variables: Any, problems: ProblemArrays,
              candidates: jax.Array, active: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(fitness [S, C], success [S, C]) of candidates [S, C, 5]; inactive slots cost nothing."""
    return fitness(candidates, (variables, problems), active)


class ExhaustiveRunner:
    """Runs problems through the corner scan, S = config.slots problems at a time.

    Same constructor and `run` as `runner.SlotRunner`, so `attack()` can use either;
    records are re-verified and built as the DE attack's (deattack.attack.verify), with
    `queries_evaluated`, `first_success_query` and `n_fooling` in Record.extra.
    """

    def __init__(self, config: AttackConfig, apply_fn: Callable, variables: Any, images: np.ndarray,
                 verify_fn: Callable[[np.ndarray], np.ndarray], clean_logits: np.ndarray,
                 stop_early: bool = True, module: Any = None):
        del module  # the corner scan always runs the full forward, whatever config.forward says
        config = dataclasses.replace(config, forward="full")
        if config.pixels != 1:
            raise ValueError(f"the exhaustive search covers one pixel only, got pixels={config.pixels}")
        self.config = config
        self.stop_early = stop_early
        self.images = np.asarray(images, np.float32)
        self.variables = variables
        self.candidates = corner_candidates(*self.images.shape[1:3])
        # Microbatches sized for CHUNK candidates a problem, as for a population of CHUNK.
        self.fitness = make_fitness(dataclasses.replace(config, population_size=CHUNK), apply_fn,
                                    variables, self.images.shape[1:])
        # Re-verified and recorded as the DE attack's problems are (corner colours need no projection).
        self.verifier = Verifier(config, lambda images, genes: genes, self.images, verify_fn,
                                 np.asarray(jax.nn.softmax(jnp.asarray(clean_logits), axis=-1)))

    def run(self, problems: Sequence[Problem],
            on_finished: Callable[[list[dict]], None] | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> tuple[list[dict], Progress]:
        budget = len(self.candidates)
        progress = Progress(problems_total=len(problems), queries_left=len(problems) * budget)
        records: list[dict] = []
        if problems and on_progress is not None:
            on_progress(progress)
        for start in range(0, len(problems), self.config.slots):
            batch = list(problems[start:start + self.config.slots])
            finished = self._scan(batch)
            records.extend(finished)
            progress.problems_done += len(finished)
            progress.successes += sum(r["success"] for r in finished)
            progress.queries += sum(r["queries"] for r in finished)
            progress.queries_left = (len(problems) - progress.problems_done) * budget
            if on_finished is not None:
                on_finished(finished)
            if on_progress is not None:
                on_progress(progress)
        return records, progress

    def _scan(self, batch: list[Problem]) -> list[dict]:
        count, total = len(batch), len(self.candidates)
        size = bucket_size(count, self.config.slots)  # few distinct shapes to compile
        arrays, _ = problem_arrays(self.images, batch, size, self.config.seed)
        orders = np.stack([scan_order(self.config.seed, p.image_index, p.target, total) for p in batch])
        first = np.full(count, -1, np.int64)  # position of the first success in the scan order
        best_fitness = np.full(count, np.inf)
        best_genes = self.candidates[orders[:, 0]].copy()
        fooling = np.zeros(count, np.int64)
        evaluated = np.zeros(count, np.int64)
        for offset in range(0, total, CHUNK):
            active = first < 0 if self.stop_early else np.ones(count, bool)
            if not active.any():
                break
            genes = self.candidates[orders[:, offset:offset + CHUNK]]  # [count, C, 5]
            width = genes.shape[1]
            padded = np.concatenate([genes, np.repeat(genes[-1:], size - count, axis=0)])
            mask = np.concatenate([active, np.zeros(size - count, bool)])
            fitness, success = jax.device_get(_evaluate(self.fitness, self.variables, arrays, padded, mask))
            fitness = np.where(np.isnan(fitness[:count]), np.inf, fitness[:count])
            success = success[:count]
            for i in np.flatnonzero(active):
                evaluated[i] += width
                fooling[i] += int(success[i].sum())
                if first[i] >= 0:
                    continue
                if success[i].any():
                    j = int(np.argmax(success[i]))
                    first[i], best_genes[i], best_fitness[i] = offset + j, genes[i, j], fitness[i, j]
                else:
                    j = int(np.argmin(fitness[i]))
                    if fitness[i, j] < best_fitness[i]:
                        best_genes[i], best_fitness[i] = genes[i, j], fitness[i, j]
        found = first >= 0
        charged = np.where(found, first + 1, total) if self.stop_early else np.full(count, total)
        status = {"best_member": best_genes, "done": found, "queries": charged,
                  "generation": np.zeros(count, np.int64), "best_fitness": best_fitness}
        records = self.verifier.records(batch, status, list(range(count)))
        return [dataclasses.replace(record, extra={
            "queries_evaluated": int(evaluated[i]),
            "first_success_query": int(first[i] + 1) if found[i] else None,
            "n_fooling": None if self.stop_early else int(fooling[i]),
        }).to_dict() for i, record in enumerate(records)]
