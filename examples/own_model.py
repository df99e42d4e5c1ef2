"""Your own model and data, end to end: a small Flax CNN on 24 x 40 RGB images of 3
classes, as `deattack attack --model examples/own_model.py:build` loads it.

  python examples/own_model.py runs/own_data.npz      # the images, as an npz like yours
  deattack attack --model examples/own_model.py:build --data runs/own_data.npz --images 20 --out runs/own

`build()` takes no arguments and returns a `deattack.Victim`: here it trains the CNN for
a few seconds on the same synthetic task (class = the brightest colour channel); your own
factory would load your weights instead. The model takes [0, 1] images, which it
declares (`input_range=(0, 1)`): deattack scales its [0, 255] images onto that.
"""

from __future__ import annotations

import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import deattack

CLASS_NAMES = ("red", "green", "blue")


class TinyCNN(nn.Module):
    @nn.compact
    def __call__(self, images):  # [N, H, W, 3] in [0, 1]
        features = nn.relu(nn.Conv(8, (3, 3))(images))
        return nn.Dense(len(CLASS_NAMES))(features.max(axis=(1, 2)))  # max pooling: one pixel can matter


def synthetic_data(count: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [count, 24, 40, 3] noisy images whose class channel is 30 levels brighter."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASS_NAMES), count)
    images = rng.integers(60, 120, (count, 24, 40, 3))
    images[np.arange(count), :, :, labels] += 30
    return images.astype(np.uint8), labels


def build() -> deattack.Victim:
    images, labels = synthetic_data()
    x, y = jnp.asarray(images, jnp.float32) / 255.0, jnp.asarray(labels)
    model = TinyCNN()
    params = model.init(jax.random.key(0), x[:1])
    optimiser = optax.adam(0.02)
    state = optimiser.init(params)

    @jax.jit
    def step(params, state):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

        updates, state = optimiser.update(jax.grad(loss)(params), state)
        return optax.apply_updates(params, updates), state

    for _ in range(30):
        params, state = step(params, state)
    return deattack.Victim.from_flax(model, params, name="tiny-cnn", input_range=(0, 1))


def main(out: str) -> None:
    path = Path(out)
    if path.exists():
        raise SystemExit(f"{path} exists; name a new file")
    path.parent.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic_data(count=40, seed=1)
    np.savez(path, images=images, labels=labels, class_names=np.asarray(CLASS_NAMES))
    print(f"wrote {len(images)} images {images.shape[1:]} of {len(CLASS_NAMES)} classes to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/own_data.npz")
