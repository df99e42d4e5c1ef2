"""A victim: a model's pure logits function, its weights, and where they came from.

foolbox's Model made pure: the attack sees only `victim.logits(images)` on [0, 255]
NHWC images (any preprocessing lives inside the model), never training state.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Victim:
    """A classifier under attack.

    Attributes:
      name: model name in the registry.
      apply_fn: pure `(variables, images [N,32,32,3] float in [0,255]) -> logits [N, C]`.
      variables: the weights pytree.
      metadata: the checkpoint's metadata (accuracy, params, training recipe).
      module: the Flax module behind apply_fn when apply_fn is exactly its eval-mode
        apply (None for wrapped victims): what forward="incremental" cuts.
    """

    name: str
    apply_fn: Callable[[Any, jax.Array], jax.Array]
    variables: Any
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    module: Any = None

    def logits(self, images: jax.Array) -> jax.Array:
        return self.apply_fn(self.variables, images)


def predict(victim: Victim, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Logits [N, C] for uint8/float [N,32,32,3] images, in fixed-size jitted batches."""
    logits_fn = _jitted_logits(victim.apply_fn)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], np.float32)
        size = len(batch)
        if size < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - size, *batch.shape[1:]), np.float32)])
        outputs.append(np.asarray(logits_fn(victim.variables, batch))[:size])
    if not outputs:
        return np.zeros((0, 10), np.float32)
    return np.concatenate(outputs)


@functools.lru_cache(maxsize=32)
def _jitted_logits(apply_fn: Callable) -> Callable:
    return jax.jit(apply_fn)


def correctly_classified(victim: Victim, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean mask [N]: the victim's top-1 prediction equals the label (papers attack only these)."""
    return np.argmax(predict(victim, images), -1) == np.asarray(labels)


def victim_fingerprint(victim) -> str:
    """The checkpoint's sha256 when it has one, else a sha256 of the weights' bytes."""
    recorded = victim.metadata.get("sha256")
    if recorded:
        return str(recorded)
    import jax

    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(victim.variables)[0]:
        array = np.asarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return "weights:" + digest.hexdigest()


def num_classes(victim) -> int:
    return int(predict(victim, np.zeros((1, 32, 32, 3), np.float32), batch_size=1).shape[-1])
