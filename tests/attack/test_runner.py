"""The runner's Progress (issue 27): queries spent and the most the unfinished problems may
still spend, so a progress bar's total shrinks as problems succeed early and reaches the
queries really spent when the last one finishes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from .red_dot import BASE_CONFIG, TRUE_CLASS, grey_images

pytestmark = pytest.mark.allow_rank_promotion

# Two slots and two generations a chunk, so problems finish and slots refill at different
# chunks; a budget of 10 x (6 + 1) = 70 queries a problem.
CONFIG = dataclasses.replace(BASE_CONFIG, population_size=10, max_generations=6, slots=2, chunk_generations=2)
# Label 4 is not the red-dot victim's prediction (3): fooled by the initial population, at 10
# queries. Label 3 needs the one weak pixel, which 70 queries practically never find.
LABELS = np.asarray([4, TRUE_CLASS, 4, TRUE_CLASS, TRUE_CLASS, 4])


def _attack_recording_progress(run_attack, victim, **kwargs):
    snapshots = []

    def on_progress(progress):
        snapshots.append((progress.problems_done, progress.queries, progress.queries_left, progress.eta_s))

    results = run_attack(victim, CONFIG, grey_images(len(LABELS)), LABELS, on_progress=on_progress, **kwargs)
    return results, snapshots


@pytest.fixture(scope="module")
def recorded(run_attack, red_dot_victim):
    return _attack_recording_progress(run_attack, red_dot_victim)


def test_progress_counts_queries_spent_and_the_budget_left(recorded):
    results, snapshots = recorded
    budget = CONFIG.max_queries
    spent = sum(r["queries"] for r in results.records)
    by_image = sorted(results.records, key=lambda r: r["image_index"])  # records come as problems finish
    assert [r["success"] for r in by_image] == (LABELS != TRUE_CLASS).tolist()
    # Before the first chunk: nothing spent, every problem's whole budget ahead.
    assert snapshots[0] == (0, 0, len(LABELS) * budget, None)
    bounds = [queries + left for _, queries, left, _ in snapshots]
    assert all(later <= earlier for earlier, later in zip(bounds, bounds[1:])), bounds
    assert all(queries <= bound for (_, queries, _, _), bound in zip(snapshots, bounds))
    # At the end: the queries spent are the records', none is left, and the early
    # successes took their unspent budget off the total.
    assert snapshots[-1][:3] == (len(LABELS), spent, 0)
    assert snapshots[-1][3] == 0.0
    assert bounds[-1] == spent < len(LABELS) * budget


def test_problems_finished_before_are_not_counted(recorded, run_attack, red_dot_victim):
    first, _ = recorded
    _, snapshots = _attack_recording_progress(run_attack, red_dot_victim, finished=first.records[:2])
    assert snapshots[0] == (0, 0, (len(LABELS) - 2) * CONFIG.max_queries, None)
    assert snapshots[-1][:3] == (len(LABELS) - 2, sum(r["queries"] for r in first.records[2:]), 0)
