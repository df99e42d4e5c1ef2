"""Victim CNNs by name. Every model maps [0, 255] NHWC images to logits."""

from __future__ import annotations

import flax.linen as nn

from deattack.models.allconv import AllConvNet
from deattack.models.common import CIFAR10_MEAN, CIFAR10_STD, PIXEL_BOUNDS, normalize
from deattack.models.lenet import LeNet
from deattack.models.nin import NetworkInNetwork
from deattack.models.resnet import CifarResNet
from deattack.models.vgg import VGG16


def _resnet20(num_classes: int) -> nn.Module:
    return CifarResNet(depth=20, num_classes=num_classes)


def _resnet56(num_classes: int) -> nn.Module:
    return CifarResNet(depth=56, num_classes=num_classes)


MODELS = {
    "lenet": LeNet,
    "resnet20": _resnet20,
    "resnet56": _resnet56,
    "nin": NetworkInNetwork,
    "allconv": AllConvNet,
    "vgg16": VGG16,
}


def get_model(name: str, num_classes: int = 10) -> nn.Module:
    """Builds the victim architecture registered under `name`.

    Raises:
      ValueError: `name` is not a known model; the message lists the known ones.
    """
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
    return factory(num_classes=num_classes)


__all__ = [
    "CIFAR10_MEAN", "CIFAR10_STD", "MODELS", "PIXEL_BOUNDS", "get_model", "normalize",
    "AllConvNet", "CifarResNet", "LeNet", "NetworkInNetwork", "VGG16",
]
