"""CIFAR-10 from decoded arrays (DEATTACK_CIFAR_ARRAYS) and the lossless pack that
carries them to a machine without tfds: round trip, checks, clear errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from deattack import data

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pack_cifar.py"
NAMES = np.asarray([f"class{i}" for i in range(10)])


def _pack_module():
    spec = importlib.util.spec_from_file_location("pack_cifar", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its worker processes pickle functions by module name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def fresh_caches():
    data._load_split_cached.cache_clear()
    data.class_names.cache_clear()
    yield
    data._load_split_cached.cache_clear()
    data.class_names.cache_clear()


def _write_split(folder: Path, split: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count).astype(np.int32)
    np.savez(folder / f"{split}.npz", images=images, labels=labels, class_names=NAMES)
    return images, labels


def test_arrays_folder_replaces_tfds(tmp_path, monkeypatch):
    train = _write_split(tmp_path, "train", 7, 0)
    test = _write_split(tmp_path, "test", 5, 1)
    monkeypatch.setenv(data.ARRAYS_ENV, str(tmp_path))
    for split, (images, labels) in (("train", train), ("test", test)):
        loaded_images, loaded_labels = data.load_split(split)
        np.testing.assert_array_equal(loaded_images, images)
        np.testing.assert_array_equal(loaded_labels, labels)
        assert loaded_labels.dtype == np.int32 and not loaded_images.flags.writeable
    assert data.class_names() == tuple(NAMES)


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((3, 32, 32, 3), np.float32), np.zeros(3, np.int32), "uint8"),
    (np.zeros((3, 28, 28, 3), np.uint8), np.zeros(3, np.int32), "expected uint8 \\[N, 32, 32, 3\\]"),
    (np.zeros((3, 32, 32, 3), np.uint8), np.zeros(2, np.int32), "labels \\[2\\]"),
    (np.zeros((3, 32, 32, 3), np.uint8), np.asarray([0, 10, 1]), "labels outside 0..9"),
])
def test_bad_arrays_are_named(tmp_path, monkeypatch, images, labels, message):
    np.savez(tmp_path / "test.npz", images=images, labels=labels, class_names=NAMES)
    monkeypatch.setenv(data.ARRAYS_ENV, str(tmp_path))
    with pytest.raises(data.DatasetError, match=message):
        data.load_split("test")


def test_missing_or_corrupt_arrays_file(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ARRAYS_ENV, str(tmp_path))
    with pytest.raises(data.DatasetError, match="test.npz"):
        data.load_split("test")
    (tmp_path / "test.npz").write_bytes(b"not a zip")
    with pytest.raises(data.DatasetError, match="unreadable"):
        data.load_split("test")


def test_pack_unpack_is_lossless_and_checked(tmp_path, monkeypatch):
    source, packed, unpacked = tmp_path / "source", tmp_path / "packed", tmp_path / "unpacked"
    source.mkdir()
    train = _write_split(source, "train", 12, 2)
    test = _write_split(source, "test", 4, 3)
    monkeypatch.setenv(data.ARRAYS_ENV, str(source))
    pack_cifar = _pack_module()
    # Random pixels compress to ~4 kB an image in WebP: 10 kB parts hold two or three.
    pack_cifar.pack(packed, part_bytes=10_000, workers=1)
    parts = sorted(packed.glob("*.npz"))
    assert len([p for p in parts if "-train-" in p.name]) > 1  # the split really was cut

    with pytest.raises(SystemExit, match="pass every part"):
        pack_cifar.unpack([p for p in parts if p.name != "cifar10-train-01.npz"], unpacked, workers=1)

    pack_cifar.unpack(parts, unpacked, workers=1)
    monkeypatch.setenv(data.ARRAYS_ENV, str(unpacked))
    data._load_split_cached.cache_clear()
    for split, (images, labels) in (("train", train), ("test", test)):
        loaded_images, loaded_labels = data.load_split(split)
        np.testing.assert_array_equal(loaded_images, images)
        np.testing.assert_array_equal(loaded_labels, labels)

    # A part whose pixels do not hash to the split's digest is refused.
    first = dict(np.load(parts[0], allow_pickle=False))
    first["sha256"] = np.asarray("0" * 64)
    np.savez(parts[0], **first)
    with pytest.raises(SystemExit, match="SHA-256"):
        pack_cifar.unpack(parts, tmp_path / "again", workers=1)
