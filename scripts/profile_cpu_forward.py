"""Where the CPU forward pass goes: the numbers behind docs/bench_findings.md.

  python scripts/profile_cpu_forward.py            # ~1 min on 2 CPU cores; stop other jobs first

1. The same victim in JAX (XLA:CPU) and in PyTorch (the bench's port, oneDNN), at the
   batch sizes the attack and the peers use, alternating 3 times in one process.
2. lenet's first convolution (5x5, 3 -> 6 channels, 'VALID' on 32x32) written five ways,
   each checked against XLA's convolution.
3. Whether XLA_FLAGS put oneDNN custom calls into the compiled resnet20 (run the script
   again with e.g. XLA_FLAGS=--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true).
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deattack.bench.timing import images_per_s  # noqa: E402
from deattack.victims.loading import load_victim  # noqa: E402

_NHWC = ("NHWC", "HWIO", "NHWC")


def jax_vs_torch(name: str, batch: int) -> None:
    from deattack.bench.peers.torch_port import port, torch_logits
    victim = load_victim(name)
    module = port(victim).eval()
    images = np.random.default_rng(0).integers(0, 256, (batch, 32, 32, 3)).astype(np.float32)
    forward = jax.jit(lambda x: victim.apply_fn(victim.variables, x))
    device_images = jnp.asarray(images)
    for _ in range(3):
        jax_rate = images_per_s(lambda: forward(device_images).block_until_ready(), batch, 3.0)
        torch_rate = images_per_s(lambda: torch_logits(module, images, batch_size=batch), batch, 3.0)
        print(f"{name} batch {batch}: jax {jax_rate:,.0f} images/s, torch {torch_rate:,.0f}, "
              f"torch/jax {torch_rate / jax_rate:.2f}", flush=True)


def first_conv_variants(batch: int = 1024) -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, 32, 32, 3)).astype(np.float32))
    kernel = jnp.asarray(rng.normal(size=(5, 5, 3, 6)).astype(np.float32))

    def xla_conv(x, k):
        return lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=_NHWC)

    def nchw(x, k):
        y = lax.conv_general_dilated(jnp.transpose(x, (0, 3, 1, 2)), k, (1, 1), "VALID",
                                     dimension_numbers=("NCHW", "HWIO", "NCHW"))
        return jnp.transpose(y, (0, 2, 3, 1))

    def patches(x, k):  # patch features are ordered (channel, row, column)
        p = lax.conv_general_dilated_patches(x, (5, 5), (1, 1), "VALID", dimension_numbers=_NHWC)
        return p @ jnp.transpose(k, (2, 0, 1, 3)).reshape(75, 6)

    def im2col(x, k):
        columns = jnp.concatenate([x[:, i:i + 28, j:j + 28, :] for i in range(5) for j in range(5)], axis=-1)
        return columns @ k.reshape(75, 6)

    def shifted_taps(x, k):
        out = 0.0
        for i in range(5):
            for j in range(5):
                out = out + jnp.einsum("nhwc,cd->nhwd", x[:, i:i + 28, j:j + 28, :], k[i, j])
        return out

    reference = jax.jit(xla_conv)(x, kernel)
    for name, fn in [("xla conv", xla_conv), ("nchw", nchw), ("patches+matmul", patches),
                     ("im2col+matmul", im2col), ("25 shifted taps", shifted_taps)]:
        compiled = jax.jit(fn)
        rate = images_per_s(lambda: compiled(x, kernel).block_until_ready(), batch, 3.0)
        error = float(jnp.max(jnp.abs(compiled(x, kernel) - reference)))
        print(f"lenet conv1, batch {batch}, {name}: {rate:,.0f} images/s (max |diff| {error:.1e})", flush=True)


def custom_calls(name: str = "resnet20") -> None:
    victim = load_victim(name)
    compiled = jax.jit(lambda x: victim.apply_fn(victim.variables, x)).lower(
        jnp.zeros((128, 32, 32, 3), jnp.float32)).compile().as_text()
    calls = collections.Counter(re.findall(r'custom_call_target="([^"]+)"', compiled))
    print(f"{name} with XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}: custom calls {dict(calls)}, "
          f"oneDNN in HLO: {'onednn' in compiled.lower()}", flush=True)


if __name__ == "__main__":
    started = time.time()
    jax_vs_torch("resnet20", 128)
    jax_vs_torch("lenet", 1024)
    first_conv_variants()
    custom_calls()
    print(f"{time.time() - started:.0f} s")
