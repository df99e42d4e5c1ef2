"""Runs the toy sweep into a store, as a separate process the resume tests can kill.

  python tests/sweep/driver.py STORE [EVENT@N]

With EVENT@N the process stops dead at the N-th such event and prints "HANG ...", for
the test to kill it there: "inserted" when a unit's result rows are inserted but its
transaction is not committed, "committed" right after a unit is committed, "partial"
right after a unit in flight saved a batch of finished problems.

JAX's persistent compilation cache (JAX_COMPILATION_CACHE_DIR, set by the test) spares
a rerun the compiles its killed predecessor finished.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import jax  # noqa: E402

jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

from deattack.sweep import store  # noqa: E402
from deattack.sweep.run import run_sweep  # noqa: E402
from tests.sweep import toy  # noqa: E402


def hang_at(spec: str):
    """Installs the stop point EVENT@N; returns run_sweep's on_unit callback."""
    wanted_event, _, count = spec.partition("@")
    seen = {"inserted": 0, "committed": 0, "partial": 0}

    def event(name: str) -> None:
        seen[name] += 1
        if name == wanted_event and seen[name] == int(count):
            print(f"HANG {name} {seen[name]}", flush=True)
            time.sleep(600)

    insert_results = store._insert_results

    def inserted(*args, **kwargs):  # inside commit_unit's transaction
        insert_results(*args, **kwargs)
        event("inserted")

    store._insert_results = inserted
    save_partial = store.Store.save_partial

    def saved(self, *args, **kwargs):  # after the batch's own transaction
        save_partial(self, *args, **kwargs)
        event("partial")

    store.Store.save_partial = saved
    return lambda unit, written: event("committed")


if __name__ == "__main__":
    on_unit = hang_at(sys.argv[2]) if len(sys.argv) > 2 else None
    run_sweep(toy.CONFIG, sys.argv[1], command="tests/sweep/driver.py", on_unit=on_unit, **toy.sweep_inputs())
    print("DONE", flush=True)
