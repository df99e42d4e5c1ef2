"""Loading a victim: a shipped name ("resnet20"), a checkpoint path, a user's factory
("mine.py:build", deattack.victims.factory), or a defended spec ("median3+resnet20": the
inner victim behind inference-time filters)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from deattack import checkpoint, data
from deattack.models import MODELS, get_model
from deattack.victims.defended import split_victim_spec, wrap
from deattack.victims.factory import is_factory_spec, load_factory
from deattack.victims.victim import Victim

# The shipped victims: inside the package when installed from a wheel (setup.py copies
# them there), at the checkout's root otherwise.
_PACKAGED = Path(__file__).resolve().parent.parent / "checkpoints"
CHECKPOINT_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent.parent / "checkpoints"


def _eval_apply(model) -> Callable:
    def apply_fn(variables, images):
        return model.apply(variables, images, train=False)

    return apply_fn


def shipped_victims() -> list[str]:
    """Names of the victims shipped in CHECKPOINT_DIR (each loads as `load_victim(name)`)."""
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.json")) if CHECKPOINT_DIR.is_dir() else []


def checkpoint_path(name_or_path: str) -> Path:
    """A shipped victim name ("resnet20") or a path to a checkpoint (with or without suffix)."""
    candidate = Path(name_or_path)
    if checkpoint.paths_for(candidate)[1].exists():
        return candidate
    shipped = CHECKPOINT_DIR / name_or_path
    if checkpoint.paths_for(shipped)[1].exists():
        return shipped
    known = shipped_victims()
    raise checkpoint.CheckpointError(
        f"no checkpoint for {name_or_path!r}: not a checkpoint path and not a shipped victim "
        f"(shipped: {', '.join(known) or 'none'}; architectures: {', '.join(sorted(MODELS))}; "
        "train one with `deattack train --model NAME`)")


def load_victim(name_or_path: str, model: str | None = None) -> Victim:
    """Loads a shipped victim by name or a checkpoint by path.

    A spec "DEFENSE+...+VICTIM" ("median3+resnet20") loads VICTIM behind inference-time
    defenses (deattack.victims.defended). A model trained with a defense is a
    checkpoint like any other: "resnet20_deadpixel" is checkpoints/resnet20_deadpixel.

    Raises:
      ValueError / CheckpointError: unknown model, missing / corrupt / mismatched checkpoint.
    """
    if "+" in str(name_or_path) and not checkpoint.paths_for(Path(name_or_path))[1].exists():
        return load_defended(str(name_or_path), model=model)
    if is_factory_spec(name_or_path) and not checkpoint.paths_for(Path(name_or_path))[1].exists():
        return load_factory(str(name_or_path))
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


def load_defended(spec: str, model: str | None = None, given: Mapping[str, Any] | None = None):
    """Loads "DEFENSE+...+VICTIM": the inner victim by name or path (or from `given`), wrapped."""
    defenses, inner = split_victim_spec(spec)
    victim = given[inner] if given is not None and inner in given else load_victim(inner, model=model)
    return wrap(victim, defenses, inner_name=inner)
