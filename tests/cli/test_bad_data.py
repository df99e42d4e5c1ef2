"""Missing or partial CIFAR-10 data is one clear DatasetError naming what is wrong and
where it looked, never a crash deep inside tfds or a silently smaller dataset.

Each case is a tmp data folder of symlinks to the prepared copy, with one flaw.
"""

from __future__ import annotations

import pytest

from deattack import data
from deattack.cli import main as cli
from tests.support import requires_cifar10

pytestmark = requires_cifar10


def _flawed_copy(tmp_path, drop=(), truncate=(), duplicate=None):
    """tmp_path/cifar10/<version>/ linking every file of the prepared copy but those in
    `drop`; those in `truncate` cut to a third; duplicate=(source, target) links
    target to source's records (a shard from elsewhere)."""
    prepared = data._prepared_version_dir(data.default_data_dir())
    folder = tmp_path / data.DATASET / prepared.name
    folder.mkdir(parents=True)
    for source in prepared.iterdir():
        target = folder / source.name
        if source.name in drop:
            continue
        if source.name in truncate:
            payload = source.read_bytes()
            target.write_bytes(payload[: len(payload) // 3])
        elif duplicate and source.name == duplicate[1]:
            target.symlink_to(prepared / duplicate[0])
        else:
            target.symlink_to(source)
    return str(tmp_path)


SHARD = "cifar10-test.array_record-{:05d}-of-00004"


def test_missing_shard(tmp_path):
    root = _flawed_copy(tmp_path, drop={SHARD.format(2)})
    with pytest.raises(data.DatasetError, match=rf"reading split 'test' failed .*No such file.*{SHARD.format(2)}") \
            as raised:
        data.load_split("test", data_dir=root)
    assert root in str(raised.value) and "TFDS_DATA_DIR" in str(raised.value)


def test_missing_split(tmp_path):
    train_shards = {f"cifar10-train.array_record-{i:05d}-of-00004" for i in range(4)}
    root = _flawed_copy(tmp_path, drop=train_shards)
    with pytest.raises(data.DatasetError, match=r"reading split 'train' failed .*No such file"):
        data.load_split("train", data_dir=root)


def test_truncated_shard(tmp_path):
    root = _flawed_copy(tmp_path, truncate={SHARD.format(1)})
    with pytest.raises(data.DatasetError, match=r"reading split 'test' failed .*Corrupted"):
        data.load_split("test", data_dir=root)


def test_shard_of_other_records_is_partial(tmp_path):
    """Every file readable, but shard 3 holds shard 0's records: 10,000 records with
    2,500 ids twice and 2,500 missing, caught by the canonical-order check."""
    root = _flawed_copy(tmp_path, duplicate=(SHARD.format(0), SHARD.format(3)))
    with pytest.raises(data.DatasetError, match=r"split 'test' is partial or has duplicate ids: 10000 records"):
        data.load_split("test", data_dir=root)


def test_cli_exits_2_with_the_message(tmp_path, monkeypatch, capsys):
    missing = "cifar10-train.array_record-00000-of-00004"
    monkeypatch.setenv("TFDS_DATA_DIR", _flawed_copy(tmp_path, drop={missing}))
    # train reads the data first (eval and attack load a victim before).
    assert cli.main(["train", "--model", "lenet", "--epochs", "1", "--workdir", str(tmp_path / "run"),
                     "--out", str(tmp_path / "lenet")]) == 2
    error = capsys.readouterr().err
    assert "deattack train: error: CIFAR-10 is not available" in error and missing in error
