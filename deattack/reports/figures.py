"""Matplotlib figures of attack results (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deattack.attack.perturb import numpy_apply_pixels
from deattack.reports.format import pixel_scale


def adversarial_grid(records: Sequence[dict[str, Any]], images: dict[int, np.ndarray],
                     class_names: Sequence[str], path: str | Path, *, model: str, pixels: int, mode: str,
                     max_examples: int = 8) -> Path:
    """Saves `adversarial_figure(...)` as a PNG at `path`; returns the path."""
    plt = pyplot()
    figure = adversarial_figure(records, images, class_names, model=model, pixels=pixels, mode=mode,
                                max_examples=max_examples)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def adversarial_figure(records: Sequence[dict[str, Any]], images: dict[int, np.ndarray],
                       class_names: Sequence[str], *, model: str, pixels: int, mode: str,
                       max_examples: int = 8):
    """Clean / adversarial pairs of the first `max_examples` successes, changed pixels
    circled, each column titled with its image index and before / after class and
    confidence; with no success, a page that says so and names the images attacked.

    Args:
      records: one run's records (one model, pixel count and mode, named in the title).
      images: image index -> clean [H, W, C] image, for (at least) the shown successes.
      class_names: index -> name.

    Returns:
      The matplotlib Figure (not saved, not closed).
    """
    successes = [r for r in records if r["success"]]
    chosen = successes[:max_examples]
    # The share of the image, from the images' own shape (no size is assumed).
    scale = pixel_scale(pixels, *next(iter(images.values())).shape[:2]) if images else _count(pixels, "pixel", "pixels")
    title = (f"{model}, {scale}, {mode}: {len(chosen)} of "
             f"{_count(len(successes), 'success', 'successes')} shown ({_count(len(records), 'problem', 'problems')})")
    if not chosen:
        return _nothing_found(title, sorted({int(r["image_index"]) for r in records}))
    plt = pyplot()
    columns = len(chosen)
    figure, axes = plt.subplots(2, columns, figsize=(max(2.2 * columns, 4.6), 5.8), squeeze=False,
                                 layout="constrained")
    for axis in axes.ravel():
        axis.axis("off")
    for column, record in enumerate(chosen):
        _draw_pair(axes[0, column], axes[1, column], record, images[int(record["image_index"])], class_names)
    figure.suptitle(f"{title}\ntop: clean image (index, label, confidence)\n"
                    "bottom: adversarial (prediction, confidence; changed pixels circled)", fontsize=9)
    return figure


def _draw_pair(top, bottom, record: dict[str, Any], clean: np.ndarray, class_names: Sequence[str]) -> None:
    """One column: the clean image above, the adversarial one below with its pixels circled."""
    plt = pyplot()
    genes = np.asarray(record["pixels"], np.float64).reshape(-1)
    adversarial = numpy_apply_pixels(clean, genes).astype(np.uint8)
    truth = class_names[record["true_label"]]
    adversarial_name = class_names[record["adversarial_prediction"]]
    top.imshow(clean.astype(np.uint8), interpolation="nearest")
    top.set_title(f"image {record['image_index']}\n{truth} {record.get('original_confidence') or 0:.2f}",
                  fontsize=8)
    bottom.imshow(adversarial, interpolation="nearest")
    bottom.set_title(f"{adversarial_name} {record['adversarial_confidence']:.2f}", fontsize=8, color="crimson")
    radius = 1.8 * max(clean.shape[:2]) / 32  # about a pixel and a half at any image size
    for x, y, *_ in record["pixels"]:
        # Unclipped: a pixel on the image's edge (x = 0, x = W - 1) keeps its whole circle.
        bottom.add_patch(plt.Circle((x, y), radius, fill=False, color="yellow", linewidth=1.2, clip_on=False))


def _nothing_found(title: str, indices: Sequence[int]):
    """The page of a run without a success: its setting and the images it attacked."""
    plt = pyplot()
    figure = plt.figure(figsize=(6.4, 2.6), layout="constrained")
    shown = ", ".join(str(i) for i in indices[:20]) + (f" and {len(indices) - 20} more" if len(indices) > 20 else "")
    figure.suptitle(title, fontsize=9)
    where = f"{'image' if len(indices) == 1 else 'images'} {shown}"
    figure.text(0.5, 0.5, f"no adversarial example found\nin {where}", ha="center", va="center", fontsize=11,
                wrap=True)
    return figure


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
