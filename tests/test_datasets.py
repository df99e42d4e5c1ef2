"""--data sources (issue 28): FILE.npz, an image FOLDER, tfds:NAME[:SPLIT], each checked
up front with one clear error naming the problem."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deattack import data
from deattack.datasets import load_dataset
from tests.support import requires_cifar10

RNG = np.random.default_rng(0)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_of_another_size_and_one_channel(tmp_path):
    images = RNG.integers(0, 256, (5, 28, 20), dtype=np.uint8)  # [N, H, W]: one channel
    spec = _npz(tmp_path / "d.npz", images=images, labels=np.asarray([0, 1, 2, 1, 0]),
                class_names=np.asarray(["a", "b", "c"]))
    dataset = load_dataset(spec)
    assert dataset.images.shape == (5, 28, 20, 1) and dataset.images.dtype == np.uint8
    np.testing.assert_array_equal(dataset.images[..., 0], images)
    assert dataset.class_names == ("a", "b", "c") and dataset.labels.tolist() == [0, 1, 2, 1, 0]


def test_npz_without_class_names_names_them_by_index(tmp_path):
    spec = _npz(tmp_path / "d.npz", images=np.zeros((2, 8, 8, 3), np.uint8), labels=np.asarray([0, 3]))
    assert load_dataset(spec).class_names == ("0", "1", "2", "3")


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((2, 8, 8, 3), np.uint8)}, "has no 'labels' array"),
    ({"labels": np.zeros(2, np.int64)}, "has no 'images' array"),
    ({"images": np.zeros((2, 8, 8, 2), np.uint8), "labels": np.zeros(2, np.int64)}, "C = 1 or 3"),
    ({"images": np.zeros((2, 8, 8, 3), np.uint8), "labels": np.asarray([0, 5]),
      "class_names": np.asarray(["a", "b"])}, r"labels must lie in \[0, 2\)"),
    ({"images": np.zeros((2, 8, 8, 3), np.uint8), "labels": np.zeros(3, np.int64)}, "labels must be integers"),
    ({"images": np.full((2, 8, 8, 3), 300.0), "labels": np.zeros(2, np.int64)}, "must be uint8"),
])
def test_bad_npz(tmp_path, arrays, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(_npz(tmp_path / "d.npz", **arrays))


def test_image_folder(tmp_path):
    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(2):
            pixels = np.full((6, 9, 3), 40 * label + 10 * i, np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    dataset = load_dataset(str(tmp_path))
    assert dataset.class_names == ("cat", "dog") and dataset.labels.tolist() == [0, 0, 1, 1]
    assert dataset.images.shape == (4, 6, 9, 3) and dataset.images[3, 0, 0, 0] == 50


def test_folder_without_images_and_mixed_sizes(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no images"):
        load_dataset(str(tmp_path / "empty"))
    for size, name in ((4, "a"), (5, "b")):
        (tmp_path / "mixed" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(tmp_path / "mixed" / name / "x.png")
    with pytest.raises(ValueError, match="differ in size"):
        load_dataset(str(tmp_path / "mixed"))


@pytest.mark.parametrize("spec, message", [("nothing.npz", "no such file"), ("banana", "is not cifar10"),
                                           ("tfds:no_such_dataset_xyz", "cannot be read")])
def test_unknown_sources(spec, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(spec)


@requires_cifar10
def test_tfds_source_reads_names_from_metadata():
    dataset = load_dataset("tfds:cifar10:test[:20]")
    assert dataset.images.shape == (20, 32, 32, 3) and dataset.class_names == data.class_names()
    assert load_dataset("cifar10:test").images.shape == (10000, 32, 32, 3)
