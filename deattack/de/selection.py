"""Selection helpers every population optimiser here shares (DE, CMA-ES): NaN fitness
ranked as +inf and never solving, and the choice of the best member."""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def sanitize(fitness: Array, solved: Array) -> tuple[Array, Array]:
    """NaN fitness counts as +inf, so it can never win a comparison, and never solves a
    problem, whatever the fitness function claims (e.g. NaN logits read as a new class)."""
    fitness = jnp.asarray(fitness, jnp.float32)
    nan = jnp.isnan(fitness)
    return jnp.where(nan, jnp.inf, fitness), jnp.asarray(solved, bool) & ~nan


def best_index(fitness: Array, solved: Array) -> Array:
    """Index of the best member: the lowest-fitness solved one if any, else the
    lowest-fitness one; ties go to the lowest index. fitness [P], solved [P]."""
    pool = jnp.where(jnp.any(solved), solved, True)
    score = jnp.where(pool, fitness, jnp.inf)
    return jnp.argmax(pool & (score == jnp.min(score)))
