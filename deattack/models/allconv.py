"""All-Convolutional Net, model All-CNN-C (Springenberg et al., ICLR 2015 workshop).

One of the three victims of Su, Vargas & Sakurai (TEVC 2019). Max-pooling is
replaced by stride-2 convolutions; the classifier is a 1x1 conv to 10 maps and
global average pooling (~1.37 M parameters). BatchNorm after each conv lets it
train with the same short recipe as the other victims.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from deattack.models.common import normalize


class AllConvNet(nn.Module):
    num_classes: int = 10
    dropout_rate: float = 0.5

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9)

        def conv(x, filters, size, strides=1, padding="SAME"):
            x = nn.Conv(filters, (size, size), (strides, strides), padding=padding, use_bias=False)(x)
            return nn.relu(norm()(x))

        x = normalize(images)
        x = nn.Dropout(0.2, deterministic=not train)(x)
        x = conv(conv(conv(x, 96, 3), 96, 3), 96, 3, strides=2)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = conv(conv(conv(x, 192, 3), 192, 3), 192, 3, strides=2)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = conv(conv(x, 192, 3, padding="VALID"), 192, 1)
        x = nn.Conv(self.num_classes, (1, 1))(x)
        return jnp.mean(x, axis=(1, 2))
