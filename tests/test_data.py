"""CIFAR-10 through tfds: counts, canonical order, statistics, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deattack import data
from tests.support import requires_cifar10

pytestmark = requires_cifar10


def test_test_split_shapes_order_and_balance(cifar_test):
    images, labels = cifar_test
    assert images.shape == (10000, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.int32
    # The first ten labels of the original CIFAR-10 test batch (shared/DATA.md).
    assert labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert np.bincount(labels).tolist() == [1000] * 10


def test_train_split_statistics():
    images, labels = data.load_split("train")
    assert images.shape == (50000, 32, 32, 3)
    assert np.bincount(labels).tolist() == [5000] * 10
    flat = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(flat.mean(0), [125.31, 122.95, 113.87], atol=0.01)
    np.testing.assert_allclose(flat.std(0), [62.99, 62.09, 66.70], atol=0.01)


def test_class_names_come_from_dataset_info():
    names = data.class_names()
    assert names[0] == "airplane" and names[3] == "cat" and len(names) == 10


def test_canonical_order_sorts_by_id():
    ids = [b"test_00002", b"test_00000", b"test_00001"]
    assert data.canonical_order(ids, "test").tolist() == [1, 2, 0]
    with pytest.raises(data.DatasetError, match="partial"):
        data.canonical_order([b"test_00000", b"test_00002"], "test")
    with pytest.raises(data.DatasetError, match="unexpected"):
        data.canonical_order([b"train_00000"], "test")


def test_missing_dataset_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)
    (tmp_path / "cifar10" / "3.0.2" / "dataset_info.json").write_text("{}")
    with pytest.raises(data.DatasetError, match=str(tmp_path)) as raised:
        data.load_split("test", data_dir=str(tmp_path))
    assert "TFDS_DATA_DIR" in str(raised.value)


def test_unknown_split():
    with pytest.raises(ValueError, match="split"):
        data.load_split("validation")


def test_select_by_range_list_and_class(cifar_test):
    _, labels = cifar_test
    assert data.select(labels, start=5, stop=8).tolist() == [5, 6, 7]
    assert data.select(labels, indices=[9, 2]).tolist() == [9, 2]
    cats = data.select(labels, start=0, stop=10, classes=[3])
    assert cats.tolist() == [0, 8]
    with pytest.raises(ValueError, match="range"):
        data.select(labels, indices=[10000])
    with pytest.raises(ValueError, match="classes"):
        data.select(labels, classes=[10])


def test_the_library_finds_the_data_as_the_cli_does(monkeypatch, tmp_path):
    """One rule, in deattack.data: TFDS_DATA_DIR, else ../shared/tensorflow_datasets beside
    the checkout when it exists, else tfds's ~/tensorflow_datasets."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert data.default_data_dir() == str(tmp_path)
    monkeypatch.delenv("TFDS_DATA_DIR")
    shared = tmp_path / "shared" / "tensorflow_datasets"
    monkeypatch.setattr(data, "SHARED_DATA_DIR", shared)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_data_dir() == str(tmp_path / "home" / "tensorflow_datasets")
    shared.mkdir(parents=True)
    assert data.default_data_dir() == str(shared)


def test_the_shared_data_folder_is_beside_the_checkout():
    checkout = Path(data.__file__).resolve().parents[1]
    assert data.SHARED_DATA_DIR == checkout.parent / "shared" / "tensorflow_datasets"
