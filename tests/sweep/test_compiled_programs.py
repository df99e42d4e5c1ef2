"""A long sweep must not keep every compiled program: each holds memory mappings, and a
process past Linux's vm.max_map_count dies inside LLVM (the 200-image operator screen did,
after 49 cells). The sweep keeps the programs of at most PROGRAMS_KEPT attack configs."""

from __future__ import annotations

import dataclasses
import os

import jax
import pytest

from deattack.sweep import programs as sweep
from deattack.sweep.grid import expand
from tests.sweep import toy

# 4 attack configs that need 4 programs, x 2 seeds that share them.
MANY_PROGRAMS = dataclasses.replace(
    toy.CONFIG, name="toy-programs", modes=("untargeted",), seeds=(0, 1),
    mutations=("rand/1", "best/1", "rand/2", "current-to-best/1"), chunk_images=6)


def _maps() -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


def test_programs_are_released_when_more_than_kept_are_needed(tmp_path, run_toy, monkeypatch):
    releases = []
    release = sweep.release_compiled
    monkeypatch.setattr(sweep, "release_compiled", lambda: releases.append(1) or release())
    monkeypatch.setattr(sweep, "PROGRAMS_KEPT", 2)
    sweep.release_compiled()
    releases.clear()
    cells = expand(MANY_PROGRAMS)
    programs = [(c.victim, c.attack.compile_key()) for c in cells]
    assert len(cells) == 8 and len(set(programs)) == 4  # the seeds share a program
    summary = run_toy(MANY_PROGRAMS, tmp_path / "s.sqlite")
    assert summary["cells_done"] == 8
    # Programs 1, 2 are kept; the 3rd releases (1, 2); the 4th is the second since.
    assert len(releases) == 1
    assert len(sweep._programs_compiled) == 2


def test_a_small_sweep_keeps_its_programs(tmp_path, run_toy, monkeypatch):
    releases = []
    monkeypatch.setattr(sweep, "release_compiled", lambda: releases.append(1))
    monkeypatch.setattr(sweep, "_programs_compiled", set())
    run_toy(toy.CONFIG, tmp_path / "s.sqlite")  # 2 programs (untargeted, targeted) < PROGRAMS_KEPT
    assert releases == []


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="counts Linux memory mappings")
def test_released_programs_give_back_their_memory_mappings(tmp_path, run_toy, monkeypatch):
    def growth(kept: int, store: str) -> int:
        monkeypatch.setattr(sweep, "PROGRAMS_KEPT", kept)
        sweep.release_compiled()
        before = _maps()
        run_toy(MANY_PROGRAMS, tmp_path / store)
        return _maps() - before

    keeping_all = growth(100, "all.sqlite")
    keeping_one = growth(1, "one.sqlite")
    jax.clear_caches()
    assert keeping_one < keeping_all / 2, (keeping_one, keeping_all)
