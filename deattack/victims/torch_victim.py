"""A PyTorch classifier as a victim's scores function (Victim.from_torch).

Mechanism: a batched host callback (deattack.victims.callback): each generation's
candidates of every slot cross to the host once and run through the torch model in one
call (in `batch_size` pieces). The alternatives were measured or ruled out on this
project's machines (docs/results/bench_torch_victim.md): torch2jax and an ONNX export
run as JAX (jaxonnxruntime) are not installable from its package index; an ONNX export
would also fix the model's batch shape and lose its custom modules.

Imports torch only inside the functions: the module loads without the [torch] extra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def infer_num_classes(model: Any) -> int | None:
    """out_features of the model's last Linear layer (None when it has none)."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return int(linears[-1].out_features) if linears else None


def torch_scores_fn(model: Any, *, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                    channels_last: bool = False, batch_size: int = 1024, device: Any = None
                    ) -> Callable[[np.ndarray], np.ndarray]:
    """`scores(images NHWC float32 in the model's input range) -> logits [N, C]` through
    `model` in eval mode, without gradients, on its own device (NCHW unless channels_last)."""
    import torch

    parameter = next(iter(model.parameters()), None)
    device = device or (parameter.device if parameter is not None else torch.device("cpu"))
    model.eval()
    shift = None if mean is None else np.asarray(mean, np.float32)
    scale = None if std is None else np.asarray(std, np.float32)

    def scores(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if shift is not None:
            images = images - shift
        if scale is not None:
            images = images / scale
        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
                if not channels_last:
                    batch = batch.permute(0, 3, 1, 2)
                outputs.append(model(batch.to(device)).float().cpu().numpy())
        return np.concatenate(outputs)

    return scores
