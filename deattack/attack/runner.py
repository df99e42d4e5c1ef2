"""The host half of the attack: a queue of problems fed into S device slots.

Between jitted chunks of G generations the host reads a few numbers per slot,
records finished problems (re-verified by an independent forward pass) and
refills their slots from the queue (continuous batching), so the device batch
stays full of problems that still cost queries. Each problem's PRNG key is
fold_in(seed, image id, target): results do not depend on slot, refill order,
batch size or device count.
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

from deattack.attack import criteria, encoding, engine
from deattack.attack.config import AttackConfig
from deattack.attack.perturb import numpy_apply_pixels
from deattack.attack.targets import random_targets


@dataclasses.dataclass(frozen=True)
class Problem:
    row: int  # position in the images given to the runner
    image_index: int  # global id (e.g. CIFAR-10 test index): names the record and seeds the key
    label: int
    target: int  # -1 when untargeted


@dataclasses.dataclass
class Progress:
    problems_total: int
    problems_done: int = 0
    successes: int = 0
    queries: int = 0
    started: float = dataclasses.field(default_factory=time.time)

    @property
    def queries_per_s(self) -> float:
        elapsed = time.time() - self.started
        return self.queries / elapsed if elapsed > 0 else 0.0


def problem_keys(seed: int, image_indices: Sequence[int], targets: Sequence[int]) -> jax.Array:
    """[N] typed keys: fold_in(fold_in(key(seed), image index), target + 1)."""
    base = jax.random.key(seed)
    images = jnp.asarray(image_indices, jnp.uint32)
    shifted = jnp.asarray(np.asarray(targets) + 1, jnp.uint32)
    return jax.vmap(lambda i, t: jax.random.fold_in(jax.random.fold_in(base, i), t))(images, shifted)


def build_problems(config: AttackConfig, labels: np.ndarray, image_indices: np.ndarray,
                   targets: np.ndarray | None, num_classes: int) -> list[Problem]:
    """Untargeted: one problem an image. Targeted: the given targets, else "all" other
    classes (the paper's setting) or one "random" other class from the seed."""
    problems = []
    for row, (label, index) in enumerate(zip(labels, image_indices)):
        if config.mode == "untargeted":
            problems.append(Problem(row, int(index), int(label), -1))
        elif targets is not None:
            problems.append(Problem(row, int(index), int(label), int(targets[row])))
        elif config.targets == "all":
            problems.extend(Problem(row, int(index), int(label), t)
                            for t in range(num_classes) if t != label)
        else:  # RANDOM_TARGET_RULE: the image's own stream, independent of the batch
            target = random_targets(config.seed, [index], [label], num_classes)[0]
            problems.append(Problem(row, int(index), int(label), int(target)))
    return problems


def bucket_size(count: int, limit: int) -> int:
    """Next power of two >= count, at most `limit`: few distinct shapes to compile."""
    size = 1
    while size < count:
        size *= 2
    return min(size, limit)


class SlotRunner:
    """Runs problems through S device slots with continuous batching."""

    def __init__(self, config: AttackConfig, apply_fn: Callable, variables: Any,
                 images: np.ndarray, verify_fn: Callable[[np.ndarray], np.ndarray],
                 clean_logits: np.ndarray, module: Any = None):
        self.config = config
        self.static_config = config.compile_key()
        self.images = np.asarray(images, np.float32)
        self.fitness = engine.make_fitness(config, apply_fn, variables, self.images.shape[1:], module=module)
        self.params = config.search_params()
        self.variables = variables
        self.verify_fn = verify_fn
        self.clean_probabilities = np.asarray(jax.nn.softmax(jnp.asarray(clean_logits), axis=-1))

    def _problem_arrays(self, problems: Sequence[Problem], size: int) -> tuple[engine.Problems, jax.Array]:
        padded = list(problems) + [problems[-1]] * (size - len(problems))
        arrays = engine.Problems(
            images=jnp.asarray(self.images[[p.row for p in padded]]),
            labels=jnp.asarray([p.label for p in padded], jnp.int32),
            targets=jnp.asarray([p.target for p in padded], jnp.int32))
        keys = problem_keys(self.config.seed, [p.image_index for p in padded], [p.target for p in padded])
        return arrays, keys

    def _init(self, problems: Sequence[Problem], size: int):
        arrays, keys = self._problem_arrays(problems, size)
        state = engine.init_slots(self.static_config, self.fitness, self.params, keys, self.variables, arrays)
        return state, arrays

    @staticmethod
    def _place(mesh, state, arrays):
        """Splits the slot axis of the state and problem arrays over the mesh's devices."""
        if mesh is None:
            return state, arrays
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(engine.SLOT_AXIS))
        return jax.device_put((state, arrays), sharding)

    def run(self, problems: Sequence[Problem],
            on_finished: Callable[[list[dict]], None] | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> tuple[list[dict], Progress]:
        config = self.config
        progress = Progress(problems_total=len(problems))
        records: list[dict] = []
        if not problems:
            return records, progress
        mesh = engine.slot_mesh(config.devices)
        num_devices = 1 if mesh is None else mesh.size
        # Slots are split evenly over devices; spare slots start finished.
        num_slots = -(-min(config.slots, len(problems)) // num_devices) * num_devices
        queue = collections.deque(problems)
        first = [queue.popleft() for _ in range(min(num_slots, len(problems)))]
        state, slot_arrays = self._init(first, num_slots)
        state = state.replace(done=state.done | (jnp.arange(num_slots) >= len(first)))
        state, slot_arrays = self._place(mesh, state, slot_arrays)
        slots: list[Problem | None] = list(first) + [None] * (num_slots - len(first))
        charged_before = np.zeros(num_slots, np.int64)
        while any(slot is not None for slot in slots):
            state = engine.run_chunk(self.static_config, self.fitness, self.params, state, self.variables,
                                     slot_arrays, config.chunk_generations, mesh=mesh)
            status = jax.device_get(engine.slot_status(self.static_config, state))
            queries = status["queries"].astype(np.int64)
            filled = np.asarray([slot is not None for slot in slots])
            progress.queries += int(((queries - charged_before) * filled).sum())
            charged_before = queries.copy()
            finished = [s for s in range(num_slots) if slots[s] is not None and not status["active"][s]]
            if finished:
                batch = self._finish([slots[s] for s in finished], status, finished)
                records.extend(batch)
                progress.problems_done += len(batch)
                progress.successes += sum(r["success"] for r in batch)
                if on_finished is not None:
                    on_finished(batch)
                for s in finished:
                    slots[s] = None
            free = [s for s in range(num_slots) if slots[s] is None]
            if queue and free and (config.refill or len(free) == num_slots):
                take = [queue.popleft() for _ in range(min(len(free), len(queue)))]
                targets_slots = free[: len(take)]
                size = bucket_size(len(take), num_slots)
                new_state, new_arrays = self._init(take, size)
                indices = np.full(size, num_slots, np.int32)  # num_slots = dropped padding
                indices[: len(take)] = targets_slots
                state, slot_arrays = self._place(mesh, *engine.insert_slots(
                    state, slot_arrays, new_state, new_arrays, jnp.asarray(indices)))
                for s, problem in zip(targets_slots, take):
                    slots[s] = problem
                charged_before[targets_slots] = 0  # their initial population is charged next read
            if on_progress is not None:
                on_progress(progress)
        return records, progress

    def _finish(self, problems: list[Problem], status: dict, slot_ids: list[int]) -> list[dict]:
        # The colours that were scored (deattack.attack.confine; unchanged without neighbour_radius).
        rows = [p.row for p in problems]
        genes = np.asarray(self.fitness.project(self.images[rows], status["best_member"][slot_ids]))
        perturbed = np.stack([numpy_apply_pixels(self.images[p.row], g) for p, g in zip(problems, genes)])
        logits = self.verify_fn(perturbed)
        labels = np.asarray([p.label for p in problems])
        targets = np.asarray([p.target for p in problems])
        _, verified = criteria.evaluate(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(targets),
                                        mode=self.config.mode, fitness=self.config.fitness,
                                        confidence=self.config.confidence)
        verified = np.asarray(verified)
        probabilities = np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))
        columns_rows, colours = encoding.decode(jnp.asarray(genes))
        columns_rows, colours = np.asarray(columns_rows), np.asarray(colours)
        records = []
        for i, (problem, slot) in enumerate(zip(problems, slot_ids)):
            claimed = bool(status["done"][slot])
            success = claimed and bool(verified[i])
            status_text = "success" if success else ("unverified" if claimed else "failed")
            if not claimed and not np.isfinite(status["best_fitness"][slot]):
                # Not one candidate gave finite logits: the victim failed, not the search,
                # so the problem leaves the success rate like a NaN clean image does.
                status_text = "nonfinite_logits"
            adversarial_class = int(np.argmax(logits[i]))
            clean = self.clean_probabilities[problem.row]
            records.append({
                "image_index": problem.image_index,
                "true_label": problem.label,
                "target": problem.target,
                "success": success,
                "status": status_text,
                "queries": int(status["queries"][slot]),
                "generations": int(status["generation"][slot]),
                "best_fitness": (float(status["best_fitness"][slot])
                                 if np.isfinite(status["best_fitness"][slot]) else None),
                "pixels": [[int(x), int(y), int(r), int(g), int(b)] for (x, y), (r, g, b)
                           in zip(columns_rows[i], colours[i])],
                "adversarial_prediction": adversarial_class,
                "adversarial_confidence": float(probabilities[i, adversarial_class]),
                "target_confidence": (float(probabilities[i, problem.target]) if problem.target >= 0
                                      else None),
                "true_confidence_after": float(probabilities[i, problem.label]),
                "original_prediction": int(np.argmax(clean)),
                "original_confidence": float(np.max(clean)),
            })
        return records
