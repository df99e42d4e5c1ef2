"""The on-device half of the attack: S slots, each a problem, evolved together: every
candidate of every slot in one jitted forward pass per generation, generations in
`lax.while_loop` (the search's optimiser `run`: deattack.de, deattack.es.cma_es or
deattack.attack.sparse_rs).

The attack knows the optimiser only through init / run / active (its entry in
deattack.attack.searches); the optimiser knows the attack only as a fitness function on
[S, P, D] candidates (deattack.attack.fitness).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deattack import de
from deattack.attack import encoding, sparse_rs
from deattack.attack.config import AttackConfig
from deattack.attack.fitness import CandidateFitness
from deattack.attack.problems import ProblemArrays
from deattack.es import cma_es

# fold_in tag of a problem's initial population; DE generations use 0, 1, 2, ...
POPULATION_TAG = 2**31 - 2


# The optimiser's state and params: DE's, CMA-ES's for search="cma-es", Sparse-RS's for "sparse-rs".
SearchState = de.DEState | cma_es.CMAESState | sparse_rs.SparseRSState
SearchParams = de.DEParams | cma_es.CMAESParams | sparse_rs.SparseRSParams


@functools.partial(jax.jit, static_argnames=("config", "fitness"))
def init_slots(config: AttackConfig, fitness: CandidateFitness, params: SearchParams,
               keys: jax.Array, variables: Any, problems: ProblemArrays) -> SearchState:
    """Initial optimiser state of S slots; keys [S] are the problems' own PRNG keys."""
    num_slots = keys.shape[0]
    height, width = problems.images.shape[1:3]
    search_config = config.search_config(problems.images.shape[1:])
    lower, upper = encoding.box(config.pixels, height, width)
    lower = jnp.broadcast_to(lower, (num_slots, lower.shape[0]))
    upper = jnp.broadcast_to(upper, (num_slots, upper.shape[0]))
    optimiser = config.search_entry.optimiser
    if not config.search_entry.de_operators:  # CMA-ES, Sparse-RS: they draw their own first generation
        return optimiser.init(search_config, params, keys, lower, upper,
                              fitness_fn=fitness, context=(variables, problems))
    initialise = encoding.INITIALISATIONS[config.init]
    population = jax.vmap(lambda key: initialise(
        jax.random.fold_in(key, POPULATION_TAG), config.population_size, config.pixels, height, width))(keys)
    return optimiser.init(search_config, params, keys, lower, upper,
                          population, fitness_fn=fitness, context=(variables, problems))


SLOT_AXIS = "slots"


@functools.partial(jax.jit, static_argnames=("config", "fitness", "mesh"))
def run_chunk(config: AttackConfig, fitness: CandidateFitness, params: SearchParams,
              state: SearchState, variables: Any, problems: ProblemArrays, num_generations,
              mesh: jax.sharding.Mesh | None = None) -> SearchState:
    """Up to `num_generations` more generations of every active slot, on device.

    With a mesh, the slot axis is split over its devices (`shard_map`): each device
    evolves its own slots in its own `while_loop`, packs its own active candidates
    and stops when its slots are done; nothing crosses devices inside the loop.
    """
    search_config = config.search_config(problems.images.shape[1:])  # static: shapes are known at trace time

    def evolve(state, problems, params, variables, num_generations):
        return config.search_entry.optimiser.run(search_config, params, state, fitness, (variables, problems),
                                                 num_generations)

    if mesh is None or mesh.size == 1:
        return evolve(state, problems, params, variables, num_generations)
    slots = jax.sharding.PartitionSpec(SLOT_AXIS)
    replicated = jax.sharding.PartitionSpec()
    sharded = jax.shard_map(evolve, mesh=mesh, in_specs=(slots, slots, replicated, replicated, replicated),
                            out_specs=slots, check_vma=False)
    return sharded(state, problems, params, variables, num_generations)


def slot_mesh(num_devices: int = 0) -> jax.sharding.Mesh | None:
    """A 1-D mesh over the first `num_devices` local devices (0 = all); None for one."""
    devices = jax.local_devices()
    count = len(devices) if num_devices <= 0 else num_devices
    if count > len(devices):
        raise ValueError(f"devices={num_devices} but only {len(devices)} local devices exist")
    if count == 1:
        return None
    return jax.sharding.Mesh(np.asarray(devices[:count]), (SLOT_AXIS,))


@jax.jit
def insert_slots(state: SearchState, problems: ProblemArrays, new_state: SearchState,
                 new_problems: ProblemArrays, slot_indices: jax.Array) -> tuple[SearchState, ProblemArrays]:
    """Writes new rows into the given slots; an index equal to S (padding) is dropped."""
    def put(old, new):
        return old.at[slot_indices].set(new, mode="drop")

    return jax.tree.map(put, state, new_state), jax.tree.map(put, problems, new_problems)


@functools.partial(jax.jit, static_argnames=("config",))
def slot_status(config: AttackConfig, state: SearchState) -> dict[str, jax.Array]:
    """The small per-slot facts the host needs between chunks. `active` reads only the
    generation budget, never the image shape, so the default shape's static config serves."""
    return {"active": config.search_entry.optimiser.active(config.search_config(), state), "done": state.done,
            "queries": state.queries, "generation": state.generation,
            "best_member": state.best_member, "best_fitness": state.best_fitness}
