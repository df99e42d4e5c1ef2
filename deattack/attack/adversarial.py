"""The adversarial images of a run's successes, rebuilt from their records' pixels, and
the results folder's adversarial.npz that keeps them.

A record holds the changed pixels, not the image, so an adversarial image is its clean
image with those pixels written in, the same NumPy write the re-verification ran
(deattack.attack.verify): the image the victim classified as the record says.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from deattack.attack.perturb import numpy_apply_pixels

ADVERSARIAL_FILE = "adversarial.npz"


class AdversarialImages(NamedTuple):
    """K successful problems, in (image index, target) order.

    Attributes:
      images: [K, H, W, C] the adversarial images, uint8 (float32 when a clean image is
        not integer-valued, as a float input to attack() may be).
      clean: [K, H, W, C] their clean images, the same dtype.
      indices: [K] int64 image indices. targets: [K] int64 target classes (-1 untargeted).
      labels: [K] int64 true classes. predictions: [K] int64 the victim's class for the
        adversarial image (the record's adversarial_prediction).
    """

    images: np.ndarray
    clean: np.ndarray
    indices: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray


def build(records: Sequence[dict[str, Any]], image_indices: np.ndarray, images: np.ndarray) -> AdversarialImages:
    """The successes among `records` whose clean image is in `images`.

    Args:
      records: result records (deattack.attack.record).
      image_indices: [M] the image index of each row of `images`.
      images: [M, H, W, C] clean images in [0, 255].
    """
    row = {int(index): position for position, index in enumerate(image_indices)}
    # Sorted, so the file does not depend on the order problems finished in (the layout's).
    chosen = sorted((r for r in records if r["success"] and int(r["image_index"]) in row),
                    key=lambda r: (int(r["image_index"]), int(r["target"])))
    clean = np.asarray(images, np.float32)[[row[int(r["image_index"])] for r in chosen]]
    adversarial = np.stack([numpy_apply_pixels(image, np.asarray(r["pixels"]).reshape(-1))
                            for image, r in zip(clean, chosen)]) if chosen else clean.copy()
    dtype = np.uint8 if np.array_equal(clean, np.round(clean)) else np.float32
    column = lambda name: np.asarray([int(r[name]) for r in chosen], np.int64)  # noqa: E731
    return AdversarialImages(images=adversarial.astype(dtype), clean=clean.astype(dtype),
                             indices=column("image_index"), targets=column("target"),
                             labels=column("true_label"), predictions=column("adversarial_prediction"))


def write(path: str | os.PathLike, adversarial: AdversarialImages) -> Path:
    """Writes the arrays to `path` (.npz) through a temporary file, so a kill mid-write
    leaves the previous file whole; returns the path."""
    path = Path(path)
    # An output folder is made by its first record (deattack.io_checks creates nothing): a
    # call that had no problem to attack has none yet.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as stream:
        np.savez_compressed(stream, **adversarial._asdict())
    os.replace(partial, path)
    return path


def read(path: str | os.PathLike) -> AdversarialImages | None:
    """The arrays of an earlier write(), or None when the file is missing or unreadable
    (it is rebuilt from the records, so nothing is lost but what it alone held)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return AdversarialImages(**{name: stored[name] for name in AdversarialImages._fields})
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def known_images(previous: AdversarialImages | None, image_indices: np.ndarray,
                 images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices [M], float32 images [M, H, W, C]): this call's images, plus the clean
    images an earlier call's file holds of other indices (images of another size are
    left out: they cannot be this folder's)."""
    image_indices, images = np.asarray(image_indices, np.int64), np.asarray(images, np.float32)
    if previous is None or previous.clean.shape[1:] != images.shape[1:]:
        return image_indices, images
    indices, first = np.unique(previous.indices, return_index=True)
    keep = ~np.isin(indices, image_indices)
    return (np.concatenate([image_indices, indices[keep]]),
            np.concatenate([images, previous.clean[first[keep]].astype(np.float32)]))
