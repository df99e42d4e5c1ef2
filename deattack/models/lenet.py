"""LeNet-5 as in the one-pixel-attack-keras repo's weakest tier (~62k parameters).

conv5x5(6) - maxpool - conv5x5(16) - maxpool - fc120 - fc84 - fc10, ReLU, no
BatchNorm (LeCun et al. 1998 layout with ReLU and max-pooling, as the Keras repo).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from deattack.models.common import normalize


class LeNet(nn.Module):
    num_classes: int = 10

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        del train  # no BatchNorm or dropout: same function in both modes
        x = normalize(images)
        x = nn.relu(nn.Conv(6, (5, 5), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x))
        x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(120)(x))
        x = nn.relu(nn.Dense(84)(x))
        return nn.Dense(self.num_classes)(x)
