"""CIFAR-10 through tensorflow-datasets, in the canonical CIFAR-10 order.

Reads with `tfds.data_source` (random-access array_record files; no TensorFlow).
tfds shuffles records when it prepares the dataset, so every example's `id`
(b"test_00042") is used to put images back in the original order: "test image
42" here is test image 42 in the papers and in every other tool.

A machine with no tfds folder (a lent GPU with no network) reads decoded arrays
instead: `DEATTACK_CIFAR_ARRAYS=DIR` holding DIR/train.npz and DIR/test.npz
(images uint8 [N, 32, 32, 3], labels, class_names, all in canonical order), as
`scripts/pack_cifar.py unpack` writes them.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DATASET = "cifar10"
SPLITS = ("train", "test")
IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


class DatasetError(RuntimeError):
    """The dataset is missing or unreadable; the message says where we looked."""


# A prepared TFDS folder beside the checkout (../shared/tensorflow_datasets), used when
# TFDS_DATA_DIR is not set: the CLI and the Python API then find the same data.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "tensorflow_datasets"


def default_data_dir() -> str:
    """`TFDS_DATA_DIR` if set, else ../shared/tensorflow_datasets beside the checkout when
    it exists, else tfds's own default (~/tensorflow_datasets)."""
    if os.environ.get("TFDS_DATA_DIR"):
        return os.environ["TFDS_DATA_DIR"]
    if SHARED_DATA_DIR.is_dir():
        return str(SHARED_DATA_DIR)
    return os.path.expanduser("~/tensorflow_datasets")


ARRAYS_ENV = "DEATTACK_CIFAR_ARRAYS"


def _arrays_dir() -> Path | None:
    folder = os.environ.get(ARRAYS_ENV)
    return Path(folder) if folder else None


def _load_arrays(split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    path = folder / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            images, labels = np.asarray(arrays["images"]), np.asarray(arrays["labels"])
    except (OSError, KeyError, ValueError) as error:
        raise DatasetError(f"CIFAR-10 arrays unreadable: {path} ({type(error).__name__}: {error}); "
                           f"{ARRAYS_ENV} must name a folder of train.npz/test.npz from "
                           "scripts/pack_cifar.py unpack") from None
    if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE
            or labels.shape != images.shape[:1]):
        raise DatasetError(f"CIFAR-10 arrays in {path} have images {images.dtype}{list(images.shape)} and labels "
                           f"{list(labels.shape)}; expected uint8 [N, 32, 32, 3] and [N]")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetError(f"CIFAR-10 arrays in {path} have labels outside 0..{NUM_CLASSES - 1}")
    return images, labels.astype(np.int32)


def _prepared_version_dir(data_dir: str) -> Path | None:
    root = Path(data_dir) / DATASET
    if not root.is_dir():
        return None
    versions = sorted(p for p in root.iterdir() if (p / "dataset_info.json").is_file())
    return versions[-1] if versions else None


def _missing_message(data_dir: str, reason: str) -> str:
    return (
        f"CIFAR-10 is not available: {reason}. Looked in {data_dir}/{DATASET}/<version>/ "
        "(from TFDS_DATA_DIR or ~/tensorflow_datasets). Fix: set TFDS_DATA_DIR to a folder "
        "holding a prepared tfds 'cifar10' (array_record format), or run on a machine with "
        "internet so tfds can download and prepare it."
    )


class _QuietDecoderNotice(logging.Filter):
    """tfds warns on every process that OpenCV is absent; Pillow decodes fine."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "OpenCV is not installed" not in record.getMessage()


def _data_source(split: str, data_dir: str):
    import tensorflow_datasets as tfds  # heavy import, only when data is really needed

    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _QuietDecoderNotice) for f in absl_logger.filters):
        absl_logger.addFilter(_QuietDecoderNotice())

    prepared = _prepared_version_dir(data_dir)
    try:
        return tfds.data_source(DATASET, split=split, data_dir=data_dir, download=prepared is None)
    except Exception as error:  # tfds raises many types; the user needs one clear message
        reason = "no prepared copy and the download failed" if prepared is None else (
            f"the prepared copy at {prepared} could not be opened ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]})"
        )
        raise DatasetError(_missing_message(data_dir, reason)) from None


_ID_PATTERN = re.compile(rb"^(train|test)_(\d+)$")


def canonical_order(ids: Sequence[bytes], split: str) -> np.ndarray:
    """Positions that sort records by their CIFAR-10 index, from ids b"<split>_<index>".

    Raises:
      DatasetError: an id is malformed, from another split, or indices are not 0..N-1.
    """
    indices = np.empty(len(ids), dtype=np.int64)
    for position, record_id in enumerate(ids):
        match = _ID_PATTERN.match(record_id)
        if match is None or match.group(1).decode() != split:
            raise DatasetError(f"unexpected CIFAR-10 record id {record_id!r} in split {split!r}")
        indices[position] = int(match.group(2))
    order = np.argsort(indices, kind="stable")
    if not np.array_equal(indices[order], np.arange(len(ids))):
        raise DatasetError(f"split {split!r} is partial or has duplicate ids: {len(ids)} records")
    return order


def _load_tfds(split: str, data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    source = _data_source(split, data_dir)
    try:
        records = source.__getitems__(range(len(source)))
    except Exception as error:
        raise DatasetError(_missing_message(
            data_dir, f"reading split {split!r} failed ({type(error).__name__}: {error})")) from None
    order = canonical_order([r["id"] for r in records], split)
    images = np.stack([records[i]["image"] for i in order]).astype(np.uint8)
    labels = np.asarray([records[i]["label"] for i in order], dtype=np.int32)
    return images, labels


@functools.lru_cache(maxsize=4)
def _load_split_cached(split: str, data_dir: str, arrays_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if arrays_dir is not None:
        images, labels = _load_arrays(split, arrays_dir)
    else:
        images, labels = _load_tfds(split, data_dir)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_split(split: str = "test", data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loads a whole CIFAR-10 split in canonical order.

    Args:
      split: "train" (50,000 images) or "test" (10,000 images).
      data_dir: tfds data folder; default `default_data_dir()`.

    Returns:
      images: uint8 [N, 32, 32, 3] (read-only), labels: int32 [N] in 0..9.

    Raises:
      ValueError: unknown split. DatasetError: data missing or unreadable.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    return _load_split_cached(split, str(data_dir or default_data_dir()), _arrays_dir())


@functools.lru_cache(maxsize=1)
def class_names(data_dir: str | None = None) -> tuple[str, ...]:
    """Class names from the dataset's metadata (index -> name)."""
    if (folder := _arrays_dir()) is not None:
        with np.load(folder / "test.npz", allow_pickle=False) as arrays:
            return tuple(str(name) for name in arrays["class_names"])
    import tensorflow_datasets as tfds

    data_dir = str(data_dir or default_data_dir())
    prepared = _prepared_version_dir(data_dir)
    if prepared is None:
        raise DatasetError(_missing_message(data_dir, "no prepared copy found"))
    builder = tfds.builder_from_directory(str(prepared))
    return tuple(builder.info.features["label"].names)


def select(
    labels: np.ndarray,
    *,
    start: int = 0,
    stop: int | None = None,
    indices: Sequence[int] | None = None,
    classes: Sequence[int] | None = None,
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """Indices of the images to use: an explicit list, or a range, optionally by class.

    Returns:
      int64 [M] indices into the split, in increasing order for ranges.
    """
    num = len(labels)
    if indices is not None:
        chosen = np.asarray(list(indices), dtype=np.int64)
        bad = chosen[(chosen < 0) | (chosen >= num)]
        if bad.size:
            raise ValueError(f"image indices out of range [0, {num}): {bad[:10].tolist()}")
    else:
        stop = num if stop is None else stop
        if not 0 <= start <= stop <= num:
            raise ValueError(f"image range [{start}, {stop}) is not inside [0, {num})")
        chosen = np.arange(start, stop, dtype=np.int64)
    if classes is not None:
        unknown = sorted(set(classes) - set(range(num_classes)))
        if unknown:
            raise ValueError(f"classes out of range 0..{num_classes - 1}: {unknown}")
        chosen = chosen[np.isin(labels[chosen], list(classes))]
    return chosen
