"""Matplotlib figures of attack results (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack.attack.perturb import numpy_apply_pixels


def adversarial_grid(records: Sequence[dict[str, Any]], images: dict[int, np.ndarray],
                     class_names: Sequence[str], path: str | Path, max_examples: int = 8) -> Path:
    """Clean / adversarial pairs of successful records, changed pixels circled,
    with before / after label and confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [r for r in records if r["success"]][:max_examples]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = max(len(chosen), 1)
    figure, axes = plt.subplots(2, columns, figsize=(max(2.2 * columns, 4.6), 5.6), squeeze=False,
                                 layout="constrained")
    for axis in axes.ravel():
        axis.axis("off")
    for column, record in enumerate(chosen):
        clean = images[record["image_index"]]
        genes = np.asarray(record["pixels"], np.float64).reshape(-1)
        adversarial = numpy_apply_pixels(clean, genes).astype(np.uint8)
        truth = class_names[record["true_label"]]
        adversarial_name = class_names[record["adversarial_prediction"]]
        axes[0, column].imshow(clean.astype(np.uint8), interpolation="nearest")
        axes[0, column].set_title(f"{truth}\n{record.get('original_confidence') or 0:.2f}", fontsize=8)
        axes[1, column].imshow(adversarial, interpolation="nearest")
        axes[1, column].set_title(f"{adversarial_name}\n{record['adversarial_confidence']:.2f}",
                                  fontsize=8, color="crimson")
        for x, y, *_ in record["pixels"]:
            axes[1, column].add_patch(plt.Circle((x, y), 1.8, fill=False, color="yellow", linewidth=1.2))
    figure.suptitle("top: clean image (label, confidence)\n"
                    "bottom: adversarial (prediction, confidence; changed pixels circled)", fontsize=9)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
