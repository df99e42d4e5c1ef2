"""Network in Network (Lin, Chen & Yan, ICLR 2014), the CIFAR-10 variant.

One of the three victims of Su, Vargas & Sakurai (TEVC 2019). Three mlpconv
blocks (a k x k conv followed by two 1x1 convs), dropout between blocks, global
average pooling over the last block's 10 maps; BatchNorm after each conv so it
trains with the same recipe as the other victims (~0.97 M parameters).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from deattack.models.common import normalize


class NetworkInNetwork(nn.Module):
    num_classes: int = 10
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9)

        def conv(x, filters, size):
            x = nn.Conv(filters, (size, size), padding="SAME", use_bias=False)(x)
            return nn.relu(norm()(x))

        x = normalize(images)
        x = conv(conv(conv(x, 192, 5), 160, 1), 96, 1)
        x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = conv(conv(conv(x, 192, 5), 192, 1), 192, 1)
        x = nn.avg_pool(x, (3, 3), (2, 2), padding="SAME")
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = conv(conv(x, 192, 3), 192, 1)
        x = nn.Conv(self.num_classes, (1, 1))(x)
        return jnp.mean(x, axis=(1, 2))
