"""VGG-16 with BatchNorm, CIFAR variant (Simonyan & Zisserman 2015; BN as in
Ioffe & Szegedy 2015). One of the three victims of Su, Vargas & Sakurai (TEVC
2019). Thirteen 3x3 convs in five stages, then a 512 -> 10 classifier
(~14.7 M parameters), as in the widely used CIFAR adaptation.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from deattack.models.common import normalize

_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG16(nn.Module):
    num_classes: int = 10

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = normalize(images)
        for stage in _STAGES:
            for filters in stage:
                x = nn.Conv(filters, (3, 3), padding="SAME", use_bias=False)(x)
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
                x = nn.relu(x)
            x = nn.max_pool(x, (2, 2), (2, 2))
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(self.num_classes)(x)
