"""Attack problems: one per (image, target), the unit every search solves.

`Problem` is the host's view (which image row, its global id, label and target);
`ProblemArrays` is what a device slot holds. Every problem has its own PRNG key,
fold_in(fold_in(key(seed), image index), target + 1), so its result does not depend
on the batch, the slot, the refill order or the device it runs on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from deattack.attack.config import AttackConfig
from deattack.attack.targets import random_targets


@dataclasses.dataclass(frozen=True)
class Problem:
    row: int  # position in the images given to the runner
    image_index: int  # global id (e.g. CIFAR-10 test index): names the record and seeds the key
    label: int
    target: int  # -1 when untargeted


@struct.dataclass
class ProblemArrays:
    """What each slot attacks; every leaf has leading axis S (slots).

    images: float32 [S, H, W, C] in [0, 255]; labels: int32 [S]; targets: int32 [S]
    (-1 when untargeted).
    """

    images: jax.Array
    labels: jax.Array
    targets: jax.Array


def problem_keys(seed: int, image_indices: Sequence[int], targets: Sequence[int]) -> jax.Array:
    """[N] typed keys: fold_in(fold_in(key(seed), image index), target + 1)."""
    base = jax.random.key(seed)
    images = jnp.asarray(image_indices, jnp.uint32)
    shifted = jnp.asarray(np.asarray(targets) + 1, jnp.uint32)
    return jax.vmap(lambda i, t: jax.random.fold_in(jax.random.fold_in(base, i), t))(images, shifted)


def build_problems(config: AttackConfig, labels: np.ndarray, image_indices: np.ndarray,
                   targets: np.ndarray | None, num_classes: int) -> list[Problem]:
    """Untargeted: one problem an image. Targeted: the given targets, else "all" other
    classes (the paper's setting), one "random" other class from the seed, or one class
    for every image (an image of that class has no problem: it is the target already).

    Raises:
      ValueError: a class target outside [0, num_classes)."""
    fixed = not isinstance(config.targets, str)
    if config.mode == "targeted" and targets is None and fixed and config.targets >= num_classes:
        raise ValueError(f"targets={config.targets} is not a class of this victim (0..{num_classes - 1})")
    problems = []
    for row, (label, index) in enumerate(zip(labels, image_indices)):
        if config.mode == "untargeted":
            problems.append(Problem(row, int(index), int(label), -1))
        elif targets is not None:
            problems.append(Problem(row, int(index), int(label), int(targets[row])))
        elif fixed:
            if int(label) != config.targets:
                problems.append(Problem(row, int(index), int(label), int(config.targets)))
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


def problem_arrays(images: np.ndarray, problems: Sequence[Problem], size: int,
                   seed: int) -> tuple[ProblemArrays, jax.Array]:
    """The device arrays and PRNG keys of `problems`, padded to `size` slots by repeating
    the last problem (padding slots are marked done or dropped by the caller)."""
    padded = list(problems) + [problems[-1]] * (size - len(problems))
    arrays = ProblemArrays(
        images=jnp.asarray(images[[p.row for p in padded]]),
        labels=jnp.asarray([p.label for p in padded], jnp.int32),
        targets=jnp.asarray([p.target for p in padded], jnp.int32))
    return arrays, problem_keys(seed, [p.image_index for p in padded], [p.target for p in padded])
