"""A victim: a model's pure logits function, its weights, and where they came from.

foolbox's Model made pure: the attack sees only `victim.logits(images)` on [0, 255]
NHWC images (any preprocessing lives inside the victim), never training state. The
constructors adapt what a user has: any JAX function (`from_fn`), any Flax module
(`from_flax`), a NumPy black box queried once a generation (`from_callback`,
deattack.victims.callback) or a PyTorch model (`from_torch`); each declares the input
domain its model takes (`input_range`, optional `mean` / `std`) and the victim maps
deattack's [0, 255] images onto it, so the attack's colours are always 0..255.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deattack.victims.callback import CallbackApply, check_input_range
from deattack.victims.torch_victim import infer_num_classes, torch_scores_fn

PIXEL_RANGE = (0.0, 255.0)  # deattack's image domain: what every Victim.apply_fn takes


@dataclasses.dataclass(frozen=True, eq=False)
class ByIdentity:
    """A callable hashed by identity: jit's static arguments must be hashable, and a
    user's apply function may hold arrays (a frozen dataclass of weights is not)."""

    fn: Callable

    def __call__(self, *args):
        return self.fn(*args)

    def __hash__(self):
        return id(self.fn)

    def __eq__(self, other):
        return isinstance(other, ByIdentity) and other.fn is self.fn


@dataclasses.dataclass(frozen=True, eq=False)
class ScaledApply:
    """`fn(variables, domain images)` on [0, 255] images: x -> (lo + x (hi - lo) / 255 - mean) / std."""

    fn: Callable
    input_range: tuple[float, float] = PIXEL_RANGE
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __call__(self, variables, images):
        low, high = self.input_range
        images = low + images * ((high - low) / 255.0)
        if self.mean is not None:
            images = images - jnp.asarray(self.mean, images.dtype)
        if self.std is not None:
            images = images / jnp.asarray(self.std, images.dtype)
        return self.fn(variables, images)

    def __hash__(self):
        return hash((id(self.fn), self.input_range, self.mean, self.std))

    def __eq__(self, other):
        return (isinstance(other, ScaledApply) and other.fn is self.fn and
                (other.input_range, other.mean, other.std) == (self.input_range, self.mean, self.std))


def _without_variables(fn: Callable) -> Callable:
    def apply_fn(variables, images):
        del variables
        return fn(images)

    return apply_fn


def _domain(fn: Callable, input_range, mean, std) -> Callable:
    """fn as an apply function on [0, 255] images (fn itself when its domain is that)."""
    input_range = check_input_range(input_range)
    mean = None if mean is None else tuple(float(m) for m in np.ravel(mean))
    std = None if std is None else tuple(float(s) for s in np.ravel(std))
    if std is not None and min(std) <= 0:
        raise ValueError(f"std must be > 0, got {std}")
    if input_range == PIXEL_RANGE and mean is None and std is None:
        return fn
    return ScaledApply(fn, input_range, mean, std)


@dataclasses.dataclass(frozen=True, eq=False)
class Victim:
    """A classifier under attack.

    Attributes:
      name: a name for records and reports (the registry name of a shipped model).
      apply_fn: pure `(variables, images [N, H, W, C] float in [0, 255]) -> logits [N, C]`;
        any callable (one that is not hashable is wrapped: jit needs a hashable one).
      variables: the weights pytree (may be empty).
      metadata: the checkpoint's metadata (accuracy, params, training recipe), and the
        declared input domain of a constructed victim.
      module: the Flax module behind apply_fn when apply_fn is exactly its eval-mode
        apply (None for wrapped victims): what forward="incremental" cuts.
    """

    name: str
    apply_fn: Callable[[Any, jax.Array], jax.Array]
    variables: Any
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    module: Any = None

    def __post_init__(self):
        if not callable(self.apply_fn):
            raise TypeError(f"Victim {self.name!r}: apply_fn must be callable (variables, images) -> logits, "
                            f"got {type(self.apply_fn).__name__}")
        try:
            hash(self.apply_fn)
        except TypeError:
            object.__setattr__(self, "apply_fn", ByIdentity(self.apply_fn))

    def logits(self, images: jax.Array) -> jax.Array:
        return self.apply_fn(self.variables, images)

    @classmethod
    def from_fn(cls, fn: Callable, variables: Any = None, *, name: str = "fn",
                input_range: Sequence[float] = PIXEL_RANGE, mean=None, std=None,
                metadata: dict[str, Any] | None = None) -> Victim:
        """Any JAX function of NHWC images -> logits: `fn(images)`, or `fn(variables, images)`
        when `variables` is given. `input_range` (e.g. (0, 1)) and `mean` / `std` (per
        channel, in that range's units) describe what fn takes; deattack scales its
        [0, 255] images onto it."""
        apply_fn = _without_variables(fn) if variables is None else fn
        return cls(name=name, apply_fn=_domain(apply_fn, input_range, mean, std),
                   variables={} if variables is None else variables,
                   metadata={**(metadata or {}), "input_range": list(check_input_range(input_range))})

    @classmethod
    def from_flax(cls, module: Any, variables: Any, *, name: str | None = None,
                  input_range: Sequence[float] = PIXEL_RANGE, mean=None, std=None,
                  apply_kwargs: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> Victim:
        """A Flax linen module and its variables (`module.apply(variables, images,
        **apply_kwargs)`, e.g. apply_kwargs={"train": False}), or an nnx module (its
        state is split out: `variables` may then be None)."""
        if variables is None:  # flax.nnx: the module carries its state
            from flax import nnx

            graph, variables = nnx.split(module)

            def apply_fn(state, images):
                return nnx.merge(graph, state)(images, **(apply_kwargs or {}))
            inner_module = None
        else:
            kwargs = dict(apply_kwargs or {})

            def apply_fn(weights, images):
                return module.apply(weights, images, **kwargs)
            inner_module = module if kwargs in ({}, {"train": False}) else None
        fn = _domain(apply_fn, input_range, mean, std)
        return cls(name=name or type(module).__name__, apply_fn=fn, variables=variables,
                   metadata={**(metadata or {}), "input_range": list(check_input_range(input_range))},
                   module=inner_module if fn is apply_fn else None)

    @classmethod
    def from_callback(cls, scores_fn: Callable[[np.ndarray], np.ndarray], num_classes: int, *,
                      name: str = "callback", input_range: Sequence[float] = PIXEL_RANGE,
                      scores: str = "logits", dtype: Any = np.float32,
                      metadata: dict[str, Any] | None = None) -> Victim:
        """A query-only black box: `scores_fn(images: np.ndarray [N, H, W, C] in
        input_range) -> [N, num_classes]` logits (or probabilities, scores="probabilities"),
        from any framework or a remote service. The attack calls it once a generation
        with every candidate of every slot (jax.pure_callback); `victim.apply_fn.ledger`
        counts every image it was sent."""
        apply_fn = CallbackApply(scores_fn, int(num_classes), check_input_range(input_range), scores,
                                 np.dtype(dtype).name)
        return cls(name=name, apply_fn=apply_fn, variables={},
                   metadata={**(metadata or {}), "input_range": list(apply_fn.input_range), "callback": True})

    @classmethod
    def from_torch(cls, model: Any, num_classes: int | None = None, *, name: str | None = None,
                   input_range: Sequence[float] = (0.0, 1.0), mean=None, std=None, channels_last: bool = False,
                   batch_size: int = 1024, metadata: dict[str, Any] | None = None) -> Victim:
        """A PyTorch classifier (NCHW unless channels_last), run through a batched host
        callback (deattack.victims.torch_victim): images mapped to `input_range`, then
        normalised by `mean` / `std` per channel when given. `num_classes` defaults to the
        last Linear layer's out_features."""
        count = num_classes or infer_num_classes(model)
        if count is None:
            raise ValueError("from_torch: the model has no Linear layer to read the class count from; "
                             "pass num_classes")
        scores = torch_scores_fn(model, mean=mean, std=std, channels_last=channels_last, batch_size=batch_size)
        return cls.from_callback(scores, count, name=name or type(model).__name__, input_range=input_range,
                                 metadata={**(metadata or {}), "framework": "torch"})

# Judgements (clean predictions, every final verdict on an adversarial image) run at full
# float32 precision on every backend: on GPUs JAX's default lets float32 convolutions use
# TF32 (Hopper) or bf16 passes, and a success found under it may not hold in float32.
JUDGEMENT_PRECISION = "highest"


def predict(victim: Victim, images: np.ndarray, batch_size: int = 500,
            precision: str = JUDGEMENT_PRECISION) -> np.ndarray:
    """Logits [N, C] for uint8/float [N, H, W, C] images in [0, 255], in fixed-size jitted
    batches, at matmul `precision` (jax.default_matmul_precision; "highest" = float32)."""
    with jax.default_matmul_precision(precision):
        return _predict(victim, images, batch_size)


def _predict(victim: Victim, images: np.ndarray, batch_size: int) -> np.ndarray:
    logits_fn = _jitted_logits(victim.apply_fn)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], np.float32)
        size = len(batch)
        if size < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - size, *batch.shape[1:]), np.float32)])
        if isinstance(victim.apply_fn, CallbackApply):  # padding is not sent to the black box
            outputs.append(np.asarray(logits_fn(victim.variables, batch, size))[:size])
        else:
            outputs.append(np.asarray(logits_fn(victim.variables, batch))[:size])
    if not outputs:
        return np.zeros((0, 10), np.float32)  # no image: no class count to learn from
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
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(victim.variables)[0]:
        array = np.asarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return "weights:" + digest.hexdigest()


def check_image_shape(victim, image_shape: tuple[int, ...]) -> None:
    """ValueError naming the shape when the victim cannot take images [N, *image_shape]."""
    if isinstance(victim.apply_fn, CallbackApply):
        return  # a black box: its own error comes with the first call
    try:
        jax.eval_shape(victim.apply_fn, victim.variables, jax.ShapeDtypeStruct((1, *image_shape), jnp.float32))
    except Exception as error:  # any tracing failure of the user's model is a shape mismatch here
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ValueError(f"victim {victim.name!r} cannot take images of shape {tuple(image_shape)} "
                         f"(H, W, C): {first}") from None


def num_classes(victim, image_shape: tuple[int, int, int] = (32, 32, 3)) -> int:
    """The victim's class count, from the shape of its output on one image."""
    known = getattr(victim.apply_fn, "num_classes", None)
    if known is not None:
        return int(known)
    return int(jax.eval_shape(victim.apply_fn, victim.variables,
                              jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)).shape[-1])
