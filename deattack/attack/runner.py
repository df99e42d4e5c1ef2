"""The host half of the attack: a queue of problems fed into S device slots.

Between jitted chunks of G generations the host reads a few numbers per slot,
records finished problems (re-verified by an independent forward pass) and
refills their slots from the queue (continuous batching), so the device batch
stays full of problems that still cost queries. Each problem's PRNG key is
fold_in(seed, image id, target) (deattack.attack.problems): results do not depend on
slot, refill order, batch size or device count. Finished problems are re-verified and
recorded by deattack.attack.verify.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deattack.attack import slots
from deattack.attack.config import AttackConfig
from deattack.attack.fitness import make_fitness
from deattack.attack.problems import Problem, bucket_size, problem_arrays
from deattack.attack.verify import Verifier


@dataclasses.dataclass
class Progress:
    """A runner's progress in this call, passed to `on_progress` before the first chunk and
    after every one; problems finished before (resumed from a folder) are not in it.

    Problems that fail spend their whole budget and finish last, so counting finished
    problems stalls; queries do not. `queries_left` is the most the unfinished problems
    may still spend: the whole budget of each queued one, the rest of it for each in
    flight. `queries_bound` = spent + left shrinks as problems succeed early and equals
    `queries` once the last one finishes.
    """

    problems_total: int
    problems_done: int = 0
    successes: int = 0
    queries: int = 0  # spent in this call
    queries_left: int = 0
    started: float = dataclasses.field(default_factory=time.time)

    @property
    def queries_per_s(self) -> float:
        elapsed = time.time() - self.started
        return self.queries / elapsed if elapsed > 0 else 0.0

    @property
    def queries_bound(self) -> int:
        return self.queries + self.queries_left

    @property
    def eta_s(self) -> float | None:
        """Seconds until every unfinished problem has spent its budget at this call's rate
        (an upper bound: successes stop early); None before a query is spent."""
        if not self.queries_left:
            return 0.0
        rate = self.queries_per_s
        return self.queries_left / rate if rate > 0 else None


class SlotRunner:
    """Runs problems through S device slots with continuous batching."""

    def __init__(self, config: AttackConfig, apply_fn: Callable, variables: Any,
                 images: np.ndarray, verify_fn: Callable[[np.ndarray], np.ndarray],
                 clean_logits: np.ndarray, module: Any = None):
        self.config = config
        self.static_config = config.compile_key()
        self.images = np.asarray(images, np.float32)
        self.fitness = make_fitness(config, apply_fn, variables, self.images.shape[1:], module=module)
        self.params = config.search_params()
        self.variables = variables
        self.verifier = Verifier(config, self.fitness.project, self.images, verify_fn,
                                 np.asarray(jax.nn.softmax(jnp.asarray(clean_logits), axis=-1)))

    def _init(self, problems: Sequence[Problem], size: int):
        arrays, keys = problem_arrays(self.images, problems, size, self.config.seed)
        state = slots.init_slots(self.static_config, self.fitness, self.params, keys, self.variables, arrays)
        return state, arrays

    @staticmethod
    def _place(mesh, state, arrays):
        """Splits the slot axis of the state and problem arrays over the mesh's devices."""
        if mesh is None:
            return state, arrays
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(slots.SLOT_AXIS))
        return jax.device_put((state, arrays), sharding)

    def run(self, problems: Sequence[Problem],
            on_finished: Callable[[list[dict]], None] | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> tuple[list[dict], Progress]:
        config = self.config
        budget = config.max_queries
        progress = Progress(problems_total=len(problems), queries_left=len(problems) * budget)
        records: list[dict] = []
        if not problems:
            return records, progress
        if on_progress is not None:
            on_progress(progress)
        mesh = slots.slot_mesh(config.devices)
        num_devices = 1 if mesh is None else mesh.size
        # Slots are split evenly over devices; spare held start finished.
        num_slots = -(-min(config.slots, len(problems)) // num_devices) * num_devices
        queue = collections.deque(problems)
        first = [queue.popleft() for _ in range(min(num_slots, len(problems)))]
        state, slot_arrays = self._init(first, num_slots)
        state = state.replace(done=state.done | (jnp.arange(num_slots) >= len(first)))
        state, slot_arrays = self._place(mesh, state, slot_arrays)
        held: list[Problem | None] = list(first) + [None] * (num_slots - len(first))
        charged_before = np.zeros(num_slots, np.int64)
        while any(slot is not None for slot in held):
            state = slots.run_chunk(self.static_config, self.fitness, self.params, state, self.variables,
                                     slot_arrays, config.chunk_generations, mesh=mesh)
            status = jax.device_get(slots.slot_status(self.static_config, state))
            queries = status["queries"].astype(np.int64)
            filled = np.asarray([slot is not None for slot in held])
            progress.queries += int(((queries - charged_before) * filled).sum())
            charged_before = queries.copy()
            finished = [s for s in range(num_slots) if held[s] is not None and not status["active"][s]]
            if finished:
                batch = [r.to_dict() for r in self.verifier.records([held[s] for s in finished], status, finished)]
                records.extend(batch)
                progress.problems_done += len(batch)
                progress.successes += sum(r["success"] for r in batch)
                if on_finished is not None:
                    on_finished(batch)
                for s in finished:
                    held[s] = None
            in_flight = np.asarray([slot is not None for slot in held])
            progress.queries_left = budget * len(queue) + int((np.maximum(budget - queries, 0) * in_flight).sum())
            state, slot_arrays = self._refill(state, slot_arrays, held, queue, charged_before, mesh)
            if on_progress is not None:
                on_progress(progress)
        return records, progress

    def _refill(self, state, slot_arrays, held: list[Problem | None], queue: collections.deque,
                charged_before: np.ndarray, mesh):
        """Fills free slots from the queue (with `refill`, else only once all are free);
        updates `held`, `queue` and `charged_before` in place, returns (state, slot_arrays)."""
        num_slots = len(held)
        free = [s for s in range(num_slots) if held[s] is None]
        if not (queue and free and (self.config.refill or len(free) == num_slots)):
            return state, slot_arrays
        take = [queue.popleft() for _ in range(min(len(free), len(queue)))]
        targets_slots = free[: len(take)]
        size = bucket_size(len(take), num_slots)
        new_state, new_arrays = self._init(take, size)
        indices = np.full(size, num_slots, np.int32)  # num_slots = dropped padding
        indices[: len(take)] = targets_slots
        state, slot_arrays = self._place(mesh, *slots.insert_slots(
            state, slot_arrays, new_state, new_arrays, jnp.asarray(indices)))
        for s, problem in zip(targets_slots, take):
            held[s] = problem
        charged_before[targets_slots] = 0  # their initial population is charged next read
        return state, slot_arrays
