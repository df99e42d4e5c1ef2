"""A query-only victim: a NumPy function from images to class scores, called from inside
the jitted attack through `jax.pure_callback` (any framework, or a remote service).

The attack forwards candidates in microbatches (deattack.attack.fitness), so a callback
victim sets its microbatch to a whole generation: one call carries every candidate of
every active slot. `CallbackApply.ledger` counts the images each call was sent, so the
queries a user's service answered can be checked against the attack's records.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

SCORE_KINDS = ("logits", "probabilities")


def check_input_range(input_range: Sequence[float]) -> tuple[float, float]:
    """(low, high) with low < high, as floats; ValueError otherwise."""
    try:
        low, high = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ValueError(f"input_range must be (low, high), e.g. (0, 1) or (0, 255), got {input_range!r}") from None
    if not low < high:
        raise ValueError(f"input_range must have low < high, got {input_range!r}")
    return low, high


class QueryLedger:
    """Images sent to a callback victim, in total and per call (thread-safe: XLA may run
    host callbacks off the main thread)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.calls: list[int] = []

    def add(self, count: int) -> None:
        with self._lock:
            self.calls.append(int(count))

    @property
    def images(self) -> int:
        with self._lock:
            return sum(self.calls)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


@dataclasses.dataclass(frozen=True, eq=False)
class CallbackApply:
    """`(variables, images [N, H, W, C] in [0, 255]) -> logits [N, num_classes]` by a host call
    of `scores_fn` on the images mapped to `input_range`.

    Hashed by identity (a static argument of jit). `valid` (optional, traced int) is the
    number of leading rows that are real candidates: the rest, padding of a fixed-shape
    batch, are not sent to `scores_fn` and not counted.
    """

    scores_fn: Callable[[np.ndarray], np.ndarray]
    num_classes: int
    input_range: tuple[float, float] = (0.0, 255.0)
    scores: str = "logits"
    dtype: str = "float32"
    ledger: QueryLedger = dataclasses.field(default_factory=QueryLedger)

    def __post_init__(self):
        if self.scores not in SCORE_KINDS:
            raise ValueError(f"scores={self.scores!r} is unknown; known: {', '.join(SCORE_KINDS)}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return other is self

    def _host(self, images: np.ndarray, valid: np.ndarray) -> np.ndarray:
        count = int(valid)
        out = np.zeros((images.shape[0], self.num_classes), np.float32)
        if count == 0:
            return out
        low, high = self.input_range
        batch = np.asarray(images[:count], np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
        scores = np.asarray(self.scores_fn(batch.astype(self.dtype)))
        if scores.shape != (count, self.num_classes):
            raise ValueError(f"callback victim: scores_fn returned shape {scores.shape} for {count} images; "
                             f"expected ({count}, {self.num_classes})")
        self.ledger.add(count)
        scores = scores.astype(np.float32)
        if self.scores == "probabilities":  # softmax(log p) = p for normalised p
            scores = np.log(np.maximum(scores, np.finfo(np.float32).tiny))
        out[:count] = scores
        return out

    def __call__(self, variables, images, valid=None):
        del variables
        valid = images.shape[0] if valid is None else valid
        result = jax.ShapeDtypeStruct((images.shape[0], self.num_classes), jnp.float32)
        return jax.pure_callback(self._host, result, images.astype(jnp.float32), jnp.asarray(valid, jnp.int32),
                                 vmap_method="sequential")
