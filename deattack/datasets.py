"""Images to attack from anywhere: `--data` of the command line.

  cifar10[:SPLIT]        the default (deattack.data: canonical CIFAR-10 order)
  FILE.npz               arrays `images` uint8 [N, H, W, C] and `labels` int [N];
                         optional `class_names` [num_classes]
  FOLDER                 one subfolder of image files per class (torchvision's
                         ImageFolder convention: classes are the sorted subfolder names)
  tfds:NAME[:SPLIT]      any tfds image classification dataset already prepared in
                         the tfds data folder (label names from its metadata)

Every source gives a `Dataset`: uint8 NHWC images (C = 1 or 3), int64 labels and class
names, checked up front so a bad file is one clear error before any work.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from deattack import data

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """images: uint8 [N, H, W, C]; labels: int64 [N] in [0, len(class_names)); name: its spec."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str


def _checked(images, labels, class_names, name: str) -> Dataset:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 3:  # [N, H, W]: one channel
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"{name}: images must be [N, H, W, C] with C = 1 or 3, got shape {list(images.shape)}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.number) or images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError(f"{name}: images must be uint8 (or numbers in [0, 255]), got {images.dtype}")
        images = images.astype(np.uint8)
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integers of shape [{len(images)}], got {labels.dtype} "
                         f"{list(labels.shape)}")
    if class_names is None:
        class_names = tuple(str(c) for c in range(int(labels.max()) + 1 if labels.size else 0))
    class_names = tuple(str(c) for c in class_names)
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"{name}: labels must lie in [0, {len(class_names)}) (its class names), got "
                         f"[{labels.min()}, {labels.max()}]")
    return Dataset(images, labels.astype(np.int64), class_names, name)


def _from_npz(path: Path) -> Dataset:
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    with arrays:
        missing = [key for key in ("images", "labels") if key not in arrays.files]
        if missing:
            raise ValueError(f"{path} has no {' or '.join(repr(m) for m in missing)} array (it holds: "
                             f"{', '.join(arrays.files) or 'nothing'}); expected images uint8 [N, H, W, C] "
                             "and labels int [N]")
        names = arrays["class_names"] if "class_names" in arrays.files else None
        return _checked(arrays["images"], arrays["labels"], names, str(path))


def _from_folder(folder: Path) -> Dataset:
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(f, label) for label, name in enumerate(classes) for f in sorted((folder / name).iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ValueError(f"{folder} holds no images: expected one subfolder per class with image files "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    images = []
    for path, _ in files:
        with Image.open(path) as image:
            mode = "L" if image.mode in ("L", "1", "I;16", "I") else "RGB"
            images.append(np.asarray(image.convert(mode)))
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"{folder}: images differ in size ({', '.join(map(str, sorted(shapes)[:4]))}); "
                         "resize them to one size first")
    return _checked(np.stack(images), np.asarray([label for _, label in files]), classes, str(folder))


def _from_tfds(name: str, split: str) -> Dataset:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data.default_data_dir())
        source = builder.as_data_source(split=split)
    except Exception as error:  # tfds raises many kinds: unknown name, not prepared, bad split
        raise ValueError(f"tfds:{name}:{split} cannot be read from {data.default_data_dir()} ({error})") from None
    features = builder.info.features
    image_key = next((k for k in ("image", "img") if k in features), None)
    if image_key is None or "label" not in features:
        raise ValueError(f"tfds:{name} is not an image classification dataset (features: {', '.join(features)})")
    examples = [source[i] for i in range(len(source))]
    return _checked(np.stack([e[image_key] for e in examples]), np.asarray([e["label"] for e in examples]),
                    features["label"].names, f"tfds:{name}:{split}")


def load_dataset(spec: str = "cifar10", split: str = "test") -> Dataset:
    """The images, labels and class names `spec` names (see the module docstring).

    Raises:
      ValueError: unknown source, unreadable or malformed data (named), or DatasetError
        for missing CIFAR-10.
    """
    if spec.startswith("cifar10"):
        _, _, chosen = spec.partition(":")
        images, labels = data.load_split(chosen or split)
        return Dataset(images, np.asarray(labels, np.int64), data.class_names(), f"cifar10:{chosen or split}")
    if spec.startswith("tfds:"):
        name, _, chosen = spec[len("tfds:"):].partition(":")
        return _from_tfds(name, chosen or split)
    path = Path(spec)
    if path.is_dir():
        return _from_folder(path)
    if path.suffix == ".npz":
        if not path.is_file():
            raise ValueError(f"--data {spec}: no such file")
        return _from_npz(path)
    raise ValueError(f"--data {spec!r} is not cifar10[:SPLIT], FILE.npz, an image FOLDER or tfds:NAME[:SPLIT]")
