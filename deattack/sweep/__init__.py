"""Sweeps: a grid of attack cells (grid), run unit by unit into a resumable SQLite store
(run, store), with compiled programs cached across cells (programs), and stores merged
across shards and machines or exported as rows (deattack.sweep.merge)."""

from deattack.sweep.grid import Cell, ImageSet, SweepConfig, Unit, expand, units_of
from deattack.sweep.run import SweepProgress, plan, run_sweep
from deattack.sweep.store import Store, StoreError

__all__ = ["Cell", "ImageSet", "Store", "StoreError", "SweepConfig", "SweepProgress", "Unit", "expand", "plan",
           "run_sweep", "units_of"]
