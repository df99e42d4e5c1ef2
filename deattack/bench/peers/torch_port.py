"""The Flax victims as identical PyTorch modules, for peers that only attack torch models.

Same functions, same weights: NCHW float images in [0, 255] (the victims' convention;
normalisation by the CIFAR-10 channel statistics happens inside, as in
deattack.models.common), BatchNorm in eval mode on the Flax running statistics.
Weight layouts: conv kernel HWIO -> OIHW, dense kernel (in, out) -> Linear (out, in).
Two places where the layouts differ and the math must not:
- LeNet flattens NHWC (rows, columns, channels) before its first dense layer; torch
  flattens NCHW, so the port permutes to NHWC before flattening.
- ResNet-20's option-A shortcut pads the missing channels missing // 2 in front and
  the rest behind (resnet.py); F.pad lists the last axis first, so channels come third.
Padding: Flax `padding=1` is ((1, 1), (1, 1)) even at stride 2, torch's `padding=1`
too; LeNet's "VALID" is torch's padding=0. Flax BatchNorm's epsilon is 1e-5, as torch's.

`check_port` is the proof: max |logit difference| against the JAX victim. On a GPU
both sides compute in full float32 for the check (JAX precision "highest", torch with
TF32 off); the attacks then run at each framework's default.

The port lives on the GPU when torch sees one (`torch_device`), as the peers' users
would run it there.

Imports torch at module level: import this module only where torch must exist
(`deattack bench` with the [bench] extra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deattack.models.common import CIFAR10_MEAN, CIFAR10_STD
from deattack.victims.victim import predict


def torch_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _module_device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _tensor(array) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))


def _load_conv(conv: nn.Conv2d, flax_conv: dict) -> None:
    conv.weight.data.copy_(_tensor(flax_conv["kernel"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
    if conv.bias is not None:
        conv.bias.data.copy_(_tensor(flax_conv["bias"]))


def _load_dense(linear: nn.Linear, flax_dense: dict) -> None:
    linear.weight.data.copy_(_tensor(flax_dense["kernel"]).T)
    linear.bias.data.copy_(_tensor(flax_dense["bias"]))


def _load_norm(norm: nn.BatchNorm2d, params: dict, stats: dict) -> None:
    norm.weight.data.copy_(_tensor(params["scale"]))
    norm.bias.data.copy_(_tensor(params["bias"]))
    norm.running_mean.copy_(_tensor(stats["mean"]))
    norm.running_var.copy_(_tensor(stats["var"]))


class Normalize(nn.Module):
    """[0, 255] NCHW -> zero-mean, unit-variance channels (deattack.models.common.normalize)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR10_STD, dtype=torch.float32).reshape(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


class LeNet(nn.Module):
    """deattack.models.lenet.LeNet."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.normalize = Normalize()
        self.conv0, self.conv1 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
        self.dense0, self.dense1, self.dense2 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv0(self.normalize(images))), 2)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = x.permute(0, 2, 3, 1).flatten(1)  # Flax flattens NHWC
        x = F.relu(self.dense1(F.relu(self.dense0(x))))
        return self.dense2(x)

    def load_flax(self, variables: dict) -> "LeNet":
        params = variables["params"]
        _load_conv(self.conv0, params["Conv_0"])
        _load_conv(self.conv1, params["Conv_1"])
        for index, dense in enumerate((self.dense0, self.dense1, self.dense2)):
            _load_dense(dense, params[f"Dense_{index}"])
        return self


class BasicBlock(nn.Module):
    """deattack.models.resnet.BasicBlock (option-A shortcut)."""

    def __init__(self, in_channels: int, filters: int, stride: int):
        super().__init__()
        self.stride, self.missing = stride, filters - in_channels
        self.conv0 = nn.Conv2d(in_channels, filters, 3, stride, padding=1, bias=False)
        self.norm0 = nn.BatchNorm2d(filters, eps=1e-5)
        self.conv1 = nn.Conv2d(filters, filters, 3, 1, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(filters, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm0(self.conv0(x)))
        y = self.norm1(self.conv1(y))
        shortcut = x
        if self.stride != 1 or self.missing:
            shortcut = x[:, :, :: self.stride, :: self.stride]
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.missing // 2, self.missing - self.missing // 2))
        return F.relu(y + shortcut)

    def load_flax(self, params: dict, stats: dict) -> None:
        _load_conv(self.conv0, params["Conv_0"])
        _load_conv(self.conv1, params["Conv_1"])
        _load_norm(self.norm0, params["BatchNorm_0"], stats["BatchNorm_0"])
        _load_norm(self.norm1, params["BatchNorm_1"], stats["BatchNorm_1"])


class CifarResNet(nn.Module):
    """deattack.models.resnet.CifarResNet."""

    def __init__(self, depth: int = 20, num_classes: int = 10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 for a CIFAR ResNet, got {depth}")
        per_stage = (depth - 2) // 6
        self.normalize = Normalize()
        self.conv0 = nn.Conv2d(3, 16, 3, 1, padding=1, bias=False)
        self.norm0 = nn.BatchNorm2d(16, eps=1e-5)
        blocks, channels = [], 16
        for stage, filters in enumerate((16, 32, 64)):
            for block in range(per_stage):
                blocks.append(BasicBlock(channels, filters, 2 if stage > 0 and block == 0 else 1))
                channels = filters
        self.blocks = nn.Sequential(*blocks)
        self.dense = nn.Linear(64, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm0(self.conv0(self.normalize(images))))
        x = self.blocks(x)
        return self.dense(x.mean(dim=(2, 3)))

    def load_flax(self, variables: dict) -> "CifarResNet":
        params, stats = variables["params"], variables["batch_stats"]
        _load_conv(self.conv0, params["Conv_0"])
        _load_norm(self.norm0, params["BatchNorm_0"], stats["BatchNorm_0"])
        for index, block in enumerate(self.blocks):
            block.load_flax(params[f"BasicBlock_{index}"], stats[f"BasicBlock_{index}"])
        _load_dense(self.dense, params["Dense_0"])
        return self


PORTS: dict[str, Callable[[], nn.Module]] = {
    "lenet": LeNet,
    "resnet20": lambda: CifarResNet(20),
    "resnet56": lambda: CifarResNet(56),
}


def port(victim) -> nn.Module:
    """The victim's architecture as a torch module holding its weights, in eval mode.

    Raises:
      ValueError: no port exists for the victim's architecture (the message lists those that do).
    """
    if victim.name not in PORTS:
        raise ValueError(f"no torch port of {victim.name!r}; ported: {', '.join(sorted(PORTS))}")
    variables: Any = {"params": victim.variables["params"], "batch_stats": victim.variables.get("batch_stats", {})}
    module = PORTS[victim.name]()
    module.load_flax(variables)
    return module.eval().to(torch_device())


def torch_logits(module: nn.Module, images_nhwc: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits [N, C] of NHWC [0, 255] images through a ported module."""
    outputs, device = [], _module_device(module)
    with torch.no_grad():
        for start in range(0, len(images_nhwc), batch_size):
            batch = _tensor(images_nhwc[start:start + batch_size]).permute(0, 3, 1, 2).to(device)
            outputs.append(module(batch).cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 10), np.float32)


def check_port(victim, module: nn.Module, images_nhwc: np.ndarray, tolerance: float = 1e-4) -> float:
    """Max |logit difference| between the JAX victim and its torch port on the images.

    Returns:
      the measured max difference.

    Raises:
      AssertionError: it exceeds `tolerance` (the port is not the same function).
    """
    import jax

    with jax.default_matmul_precision("highest"):
        reference = predict(victim, images_nhwc, batch_size=min(len(images_nhwc), 256))
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        difference = float(np.max(np.abs(torch_logits(module, images_nhwc) - reference)))
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    assert difference <= tolerance, (
        f"torch port of {victim.name} differs from the JAX victim by {difference:.3g} > {tolerance:g} "
        f"(max |logit| {np.max(np.abs(reference)):.3g}) on {len(images_nhwc)} images")
    return difference
