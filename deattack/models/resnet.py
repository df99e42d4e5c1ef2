"""CIFAR ResNet-20 (He et al., "Deep Residual Learning", CVPR 2016, Sec. 4.2).

Three stages of n = 3 basic blocks with 16/32/64 filters, option-A shortcuts
(identity, with stride-2 subsampling and zero-padded channels where the shape
changes), so the parameter count is the paper's 0.27 M.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from deattack.models import cpu_conv
from deattack.models.common import normalize

# cpu_conv: same forward as XLA's, a faster kernel gradient for the 16-channel layers on CPU.
_conv = functools.partial(nn.Conv, use_bias=False, kernel_init=nn.initializers.he_normal(),
                          conv_general_dilated=cpu_conv.conv_general_dilated)


class BasicBlock(nn.Module):
    filters: int
    strides: int

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9)
        y = _conv(self.filters, (3, 3), (self.strides, self.strides), padding=1)(x)
        y = nn.relu(norm()(y))
        y = _conv(self.filters, (3, 3), padding=1)(y)
        y = norm()(y)
        shortcut = x
        if self.strides != 1 or x.shape[-1] != self.filters:
            # Option A: parameter-free shortcut, as in the paper's CIFAR nets.
            shortcut = x[:, :: self.strides, :: self.strides, :]
            missing = self.filters - x.shape[-1]
            shortcut = jnp.pad(
                shortcut, ((0, 0), (0, 0), (0, 0), (missing // 2, missing - missing // 2))
            )
        return nn.relu(y + shortcut)


class CifarResNet(nn.Module):
    depth: int = 20
    num_classes: int = 10

    @nn.compact
    def __call__(self, images: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if (self.depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 for a CIFAR ResNet, got {self.depth}")
        blocks_per_stage = (self.depth - 2) // 6
        x = normalize(images)
        x = _conv(16, (3, 3), padding=1)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        for stage, filters in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                strides = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(filters, strides)(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)
