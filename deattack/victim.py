"""A victim: a model's pure logits function, its weights, and where they came from.

foolbox's Model made pure: the attack sees only `victim.logits(images)` on [0, 255]
NHWC images (any preprocessing lives inside the model), never training state.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deattack import checkpoint, data
from deattack.models import MODELS, get_model

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


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


def _eval_apply(model) -> Callable:
    def apply_fn(variables, images):
        return model.apply(variables, images, train=False)

    return apply_fn


def checkpoint_path(name_or_path: str) -> Path:
    """A shipped victim name ("resnet20") or a path to a checkpoint (with or without suffix)."""
    candidate = Path(name_or_path)
    if checkpoint.paths_for(candidate)[1].exists():
        return candidate
    shipped = CHECKPOINT_DIR / name_or_path
    if checkpoint.paths_for(shipped)[1].exists():
        return shipped
    known = sorted(p.stem for p in CHECKPOINT_DIR.glob("*.json")) if CHECKPOINT_DIR.is_dir() else []
    raise checkpoint.CheckpointError(
        f"no checkpoint for {name_or_path!r}: not a checkpoint path and not a shipped victim "
        f"(shipped: {', '.join(known) or 'none'}; architectures: {', '.join(sorted(MODELS))}; "
        "train one with `deattack train --model NAME`)")


def load_victim(name_or_path: str, model: str | None = None) -> Victim:
    """Loads a shipped victim by name or a checkpoint by path.

    A spec "DEFENSE+...+VICTIM" ("median3+resnet20") loads VICTIM behind inference-time
    defenses (deattack.defenses.wrappers). A model trained with a defense is a
    checkpoint like any other: "resnet20_deadpixel" is checkpoints/resnet20_deadpixel.

    Raises:
      ValueError / CheckpointError: unknown model, missing / corrupt / mismatched checkpoint.
    """
    if "+" in str(name_or_path) and not checkpoint.paths_for(Path(name_or_path))[1].exists():
        from deattack.defenses.wrappers import load_defended

        return load_defended(str(name_or_path), model=model)
    path = checkpoint_path(name_or_path)
    metadata = checkpoint.read_metadata(path)
    model_name = model or metadata.get("model")
    if model_name is None:
        raise checkpoint.CheckpointError(f"{path}: metadata names no model; pass model=...")
    module = get_model(model_name)
    template = module.init(jax.random.key(0), jnp.zeros((1, *data.IMAGE_SHAPE), jnp.float32))
    template = {"params": template["params"], "batch_stats": template.get("batch_stats", {})}
    variables, metadata = checkpoint.restore(path, template)
    variables = jax.tree.map(jnp.asarray, variables)
    return Victim(name=model_name, apply_fn=_eval_apply(module), variables=variables, metadata=metadata,
                  module=module)


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
