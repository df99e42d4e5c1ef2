"""The sweep's cache of compiled attack programs: how many distinct programs this process
has compiled, and releasing JAX's compilation caches when more than PROGRAMS_KEPT are
alive, so a long sweep over many settings does not grow without bound."""

from __future__ import annotations

import gc

# Each attack config compiles its own programs, and on CPU a program holds a few hundred
# memory mappings (~400 for a small attack, ~1,300 for an operator-screen cell) for as
# long as it is cached. A process that kept every one reached Linux's default
# vm.max_map_count (65,530) after 49 cells of the operator screen and died inside LLVM
# ("Cannot allocate memory", then a segfault). So the sweep keeps the programs of at
# most PROGRAMS_KEPT attack configs per process and drops them all when one more comes;
# cells that differ only in seed, F or CR share one (AttackConfig.compile_key).
PROGRAMS_KEPT = 8


_programs_compiled: set = set()


def _count_program(program: tuple) -> None:
    if program in _programs_compiled:
        return
    if len(_programs_compiled) >= PROGRAMS_KEPT:
        release_compiled()
    _programs_compiled.add(program)


def release_compiled() -> None:
    """Drops every compiled program of the process (jax.clear_caches) and frees them."""
    import jax

    jax.clear_caches()
    gc.collect()
    _programs_compiled.clear()
