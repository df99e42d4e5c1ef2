"""The optimiser's state: one immutable pytree for B independent problems."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct

Array = jax.Array


@struct.dataclass
class DEState:
    """State of B problems, each with P members of D genes; every leaf has
    leading axis B, so problems can be sliced, refilled and sharded alike.

    Attributes:
      population: [B, P, D] float32, always inside [lower, upper].
      fitness: [B, P] float32, lower is better; NaN is stored as +inf.
      best_member: [B, D] float32, the lowest-fitness solved member once the
        problem is done, else the lowest-fitness member.
      best_fitness: [B] float32, fitness of best_member.
      generation: [B] int32, generations run on this problem.
      done: [B] bool, some member solved the problem; its state is frozen.
      queries: [B] int32, objective evaluations charged: P at init, P per
        generation run.
      key: [B] typed PRNG keys; generation g draws from fold_in(key, g).
      adapt: adaptation state pytree, leaves with leading axis B.
      archive: [B, A, D] float32, JADE's archive of replaced parents
        (A = P when the config keeps an archive, else 0).
      archive_size: [B] int32, valid rows of the archive.
      lower: [B, D] float32, lower bounds of the box.
      upper: [B, D] float32, upper bounds of the box.
    """

    population: Array
    fitness: Array
    best_member: Array
    best_fitness: Array
    generation: Array
    done: Array
    queries: Array
    key: Array
    adapt: Any
    archive: Array
    archive_size: Array
    lower: Array
    upper: Array
