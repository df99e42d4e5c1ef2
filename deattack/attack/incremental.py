"""Incremental evaluation: a few changed pixels alter the first convolution only locally.

The first convolution of a victim is linear in the (normalised) image, so for a
candidate that changes K pixels of a clean image

    conv(clean + delta) = conv(clean) + conv(delta),

and conv(delta) is non-zero only in a kernel-sized window around each changed pixel.
The attack computes the clean image's first-layer output once a generation and, per
candidate, adds K small kernel-sized patches to it; the rest of the network runs from
there. The first layer is where a small CIFAR network spends much of its time (in
LeNet's 5x5 convolution on 32x32 maps about three quarters of the forward on CPU), and
almost nothing in ResNet-20, where this does not pay.

The cut is found by interception (`flax.linen.intercept_methods`), not by a model
rewrite: the first `nn.Conv` the model calls is the stem, and the head is the model
run with that call's output replaced. `split_first_conv` refuses a model whose stem
is not a stride-1 convolution of `normalize(images)`, and checks the split against the
full forward on random candidates before the attack may use it. The search's fitness
then differs from the full forward by float rounding only; the attack's verdicts on
final images always come from the full forward (deattack.attack.api).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from deattack.attack.encoding import decode
from deattack.attack.perturb import apply_pixels, overwritten
from deattack.models.common import CIFAR10_STD, normalize

# Largest |incremental - full| logit difference accepted by the check, relative to the
# logits' own scale: float32 rounding of a reordered sum is ~1e-6 of it.
TOLERANCE = 1e-4


class _StemReached(Exception):
    """Stops a traced forward pass once the first convolution has run."""


def _first_conv_interceptor(record: dict, replacement: jax.Array | None = None):
    """Records the first nn.Conv call; with `replacement`, returns it instead of the conv's output."""
    def interceptor(next_fun, args, kwargs, context):
        if not (isinstance(context.module, nn.Conv) and context.method_name == "__call__") or record:
            return next_fun(*args, **kwargs)
        record.update(module=context.module, path=tuple(context.module.path), inputs=args[0])
        if replacement is not None:
            return replacement
        record["outputs"] = next_fun(*args, **kwargs)
        raise _StemReached
    return interceptor


def _first_conv_call(module: nn.Module, variables: Any, images: jax.Array, apply_kwargs: Any) -> dict:
    """The model run up to its first nn.Conv: {module, path, inputs, outputs} ({} if none)."""
    record: dict = {}
    try:
        with nn.intercept_methods(_first_conv_interceptor(record)):
            module.apply(variables, images, **dict(apply_kwargs))
    except _StemReached:
        pass
    return record


def _padding(module: nn.Conv) -> tuple[tuple[int, int], tuple[int, int]]:
    """The stem's explicit (top, bottom), (left, right) padding; ValueError if unsupported."""
    kernel = tuple(module.kernel_size)
    padding = module.padding
    if padding == "VALID":
        return (0, 0), (0, 0)
    if padding == "SAME":  # lax's convention at stride 1: the extra row / column goes last
        return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel)  # type: ignore[return-value]
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if isinstance(padding, Sequence) and len(padding) == 2:
        pairs = [(p, p) if isinstance(p, int) else tuple(p) for p in padding]
        if all(len(p) == 2 and all(isinstance(v, (int, np.integer)) for v in p) for p in pairs):
            return tuple((int(a), int(b)) for a, b in pairs)  # type: ignore[return-value]
    raise ValueError(f"incremental evaluation supports 'SAME', 'VALID' or explicit padding of the first "
                     f"convolution, got {padding!r}")


def _check_supported(module: nn.Conv, inputs: jax.Array, images: jax.Array) -> None:
    def ones(value) -> bool:
        return value is None or all(v == 1 for v in np.atleast_1d(value))

    problems = []
    if len(module.kernel_size) != 2:
        problems.append(f"a {len(module.kernel_size)}-D kernel")
    if not (ones(module.strides) and ones(module.kernel_dilation) and ones(module.input_dilation)):
        problems.append(f"strides {module.strides} / dilations {module.kernel_dilation}, {module.input_dilation}")
    if module.feature_group_count != 1:
        problems.append(f"feature_group_count {module.feature_group_count}")
    if inputs.shape != images.shape or not np.allclose(np.asarray(inputs), np.asarray(normalize(images)),
                                                       rtol=1e-6, atol=1e-6):
        problems.append("an input that is not normalize(images) (a wrapper or other preprocessing comes first)")
    if problems:
        raise ValueError(f"incremental evaluation needs a stride-1 2-D convolution of the normalised image as "
                         f"the model's first layer; {'/'.join(module.path)} has {'; '.join(problems)}")


@dataclasses.dataclass(frozen=True)
class FirstConvSplit:
    """A Flax victim cut after its first convolution.

    Hashable and equal by value (Flax modules are), so the attack's jitted step, which
    takes it as a static argument, compiles once per architecture, not once per call.
    """

    module: nn.Module
    kernel_path: tuple[str, ...]
    padding: tuple[tuple[int, int], tuple[int, int]]
    kernel_size: tuple[int, int]
    apply_kwargs: tuple[tuple[str, Any], ...] = (("train", False),)

    def stem(self, variables: Any, images: jax.Array) -> jax.Array:
        """The first convolution's output (bias included) for [N, H, W, C] images."""
        return _first_conv_call(self.module, variables, images, self.apply_kwargs)["outputs"]

    def head(self, variables: Any, stem_outputs: jax.Array, image_shape: tuple[int, ...]) -> jax.Array:
        """Logits from first-convolution outputs; the model's own input is unused (dead code)."""
        placeholder = jnp.zeros((stem_outputs.shape[0], *image_shape), stem_outputs.dtype)
        with nn.intercept_methods(_first_conv_interceptor({}, replacement=stem_outputs)):
            return self.module.apply(variables, placeholder, **dict(self.apply_kwargs))

    def kernel(self, variables: Any) -> jax.Array:
        params = variables["params"]
        for name in self.kernel_path:
            params = params[name]
        return params["kernel"]

    def pad_stem(self, stem_outputs: jax.Array) -> jax.Array:
        """Room for a full kernel window around every output position: [N, H'+2(kh-1), W'+2(kw-1), C]."""
        kh, kw = self.kernel_size
        return jnp.pad(stem_outputs, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))

    def candidate_logits(self, variables: Any, padded_stems: jax.Array, images: jax.Array,
                         genes: jax.Array) -> jax.Array:
        """Logits [N, C] of N candidates, each row with its own clean image and padded stem."""
        stems = jax.vmap(self.perturbed_stem, in_axes=(None, 0, 0, 0))(self.kernel(variables), padded_stems,
                                                                       images, genes)
        return self.head(variables, stems, images.shape[1:])

    def perturbed_stem(self, kernel: jax.Array, padded_stem: jax.Array, image: jax.Array,
                       genes: jax.Array) -> jax.Array:
        """The first convolution's output for one candidate, from its clean image's padded output.

        A pixel (column c, row r) changed by d (normalised units) adds
        W[kh-1-u, kw-1-v]^T d at padded position (r + top + u, c + left + v). Where two
        pixels share a location the later one wins (deattack.attack.perturb), so an
        overwritten one adds nothing.
        """
        kh, kw = self.kernel_size
        (top, _), (left, _) = self.padding
        columns_rows, colours = decode(genes)
        rows, columns = columns_rows[:, 1], columns_rows[:, 0]
        clean = image[rows, columns].astype(jnp.float32)
        std = jnp.asarray(CIFAR10_STD, jnp.float32)[None, :]
        deltas = jnp.where(overwritten(columns_rows)[:, None], 0.0, (colours - clean) / std)
        # [K, kh, kw, C_out], flipped so patch[u, v] multiplies at offset (u, v) of the window.
        patches = jnp.einsum("abio,ki->kabo", kernel.astype(jnp.float32), deltas)[:, ::-1, ::-1, :]
        outputs = padded_stem
        for k in range(columns_rows.shape[0]):
            start = (rows[k] + top, columns[k] + left, 0)
            window = jax.lax.dynamic_slice(outputs, start, patches.shape[1:])
            outputs = jax.lax.dynamic_update_slice(outputs, window + patches[k], start)
        height = padded_stem.shape[0] - 2 * (kh - 1)
        width = padded_stem.shape[1] - 2 * (kw - 1)
        return outputs[kh - 1:kh - 1 + height, kw - 1:kw - 1 + width]


def _weights_digest(variables: Any) -> str:
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return digest.hexdigest()


def split_first_conv(module: nn.Module, variables: Any, image_shape: tuple[int, ...] = (32, 32, 3),
                     pixels: int = 1, seed: int = 0, check_candidates: int = 16) -> FirstConvSplit:
    """Cuts `module` after its first convolution and checks the cut against the full forward.

    The check runs once per (architecture, weights, image shape, pixels) in a process:
    a sweep calls the attack once per chunk of images.

    Raises:
      ValueError: the first layer is not a stride-1 2-D convolution of normalize(images),
        or incremental logits differ from the full forward's by more than TOLERANCE on
        `check_candidates` random `pixels`-pixel candidates (edges and corners included).
    """
    key = (module, _weights_digest(variables), tuple(image_shape), int(pixels), int(seed), int(check_candidates))
    if key not in CHECKED_SPLITS:
        split = _checked_split(module, variables, *key[2:])  # raises before anything is cached
        if len(CHECKED_SPLITS) >= _CACHED_SPLITS:
            del CHECKED_SPLITS[next(iter(CHECKED_SPLITS))]  # the oldest check
        CHECKED_SPLITS[key] = split
    return CHECKED_SPLITS[key]


# Checked cuts by (module, SHA-256 of the weights, image shape, pixels, seed, candidates):
# the digest stands for the weights, which are unhashable arrays.
CHECKED_SPLITS: dict[tuple, FirstConvSplit] = {}
_CACHED_SPLITS = 16


def _checked_split(module, variables, image_shape, pixels, seed, check_candidates) -> FirstConvSplit:
    rng = np.random.default_rng(seed)
    images = jnp.asarray(rng.uniform(0, 255, (2, *image_shape)), jnp.float32)
    apply_kwargs = FirstConvSplit.apply_kwargs
    record = _first_conv_call(module, variables, images, apply_kwargs)
    if "module" not in record:
        raise ValueError(f"incremental evaluation needs a convolution first; {type(module).__name__} called no nn.Conv")
    conv = record["module"]
    _check_supported(conv, record["inputs"], images)
    split = FirstConvSplit(module=module, kernel_path=record["path"], padding=_padding(conv),
                           kernel_size=tuple(int(k) for k in conv.kernel_size))

    # Candidates on every border and corner, where the window is clipped by padding.
    height, width = image_shape[:2]
    corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
    genes = []
    for i in range(check_candidates):
        locations = [corners[(i + k) % 4] if i < 4 else (rng.integers(width), rng.integers(height))
                     for k in range(pixels)]
        genes.append([v for x, y in locations for v in (x, y, *rng.choice([0.0, 255.0], 3))])
    genes = jnp.asarray(genes, jnp.float32)
    owners = jnp.arange(check_candidates) % images.shape[0]
    full = module.apply(variables, jax.vmap(apply_pixels)(images[owners], genes), **dict(apply_kwargs))
    padded = split.pad_stem(record["outputs"])  # the clean images' stems: the run above
    incremental = split.candidate_logits(variables, padded[owners], images[owners], genes)
    error = float(jnp.max(jnp.abs(incremental - full)))
    scale = float(jnp.max(jnp.abs(full)))
    if not np.isfinite(error) or error > TOLERANCE * max(scale, 1.0):
        raise ValueError(f"incremental evaluation of {type(module).__name__} differs from its full forward by "
                         f"{error:.3g} (logit scale {scale:.3g}); use the full forward")
    return split
