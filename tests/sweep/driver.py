"""Runs the toy sweep into a store, as a separate process the resume test can kill.

  python tests/sweep/driver.py STORE

JAX's persistent compilation cache (JAX_COMPILATION_CACHE_DIR, set by the test) spares
a rerun the compiles its killed predecessor finished.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import jax  # noqa: E402

jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

from deattack.sweep import run_sweep  # noqa: E402
from tests.sweep import toy  # noqa: E402

if __name__ == "__main__":
    run_sweep(toy.CONFIG, sys.argv[1], command="tests/sweep/driver.py", **toy.sweep_inputs())
