"""On-device training augmentations, by name.

Each augmentation is `fn(key, images float32 [N, 32, 32, 3] in [0, 255], labels [N])
-> images` and runs inside the jitted train step. A training-time defense (e.g.
dead-pixel augmentation) is one more entry in `AUGMENTATIONS` and one name in the
training config's `augmentations`, not a new training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

AugmentFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def random_crop(key: jax.Array, images: jax.Array, labels: jax.Array, padding: int = 4) -> jax.Array:
    """Zero-pads by `padding` and crops back at a random offset (He et al. 2016)."""
    del labels
    n, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    offsets = jax.random.randint(key, (n, 2), 0, 2 * padding + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, image.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


def random_flip(key: jax.Array, images: jax.Array, labels: jax.Array) -> jax.Array:
    """Mirrors each image left-right with probability 1/2."""
    del labels
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1, :], images)


AUGMENTATIONS: dict[str, AugmentFn] = {
    "crop": random_crop,
    "flip": random_flip,
}


def compose(names: Sequence[str]) -> AugmentFn:
    """One augmentation function applying `names` in order, each with its own key."""
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; known: {', '.join(sorted(AUGMENTATIONS))}")
    functions = [AUGMENTATIONS[name] for name in names]

    def augment(key: jax.Array, images: jax.Array, labels: jax.Array) -> jax.Array:
        for index, function in enumerate(functions):
            images = function(jax.random.fold_in(key, index), images, labels)
        return images

    return augment
