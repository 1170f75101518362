"""Sharded image arrays: plain zarr reads them, appends rewrite only the tail shard, once per
commit, and stores from before sharding (a file per frame) keep working."""

from __future__ import annotations

import numpy as np
import zarr

from robot_learning.store import StoreReader, StoreWriter
from robot_learning.store.frame_files import ShardFiles, is_sharded
from robot_learning.store.layout import SHARD_FRAMES
from robot_learning.store.validate import validate
from tests.store import helpers

SHARD = 4


def write(path, seeds, lengths, **kwargs):
    with StoreWriter(path, helpers.schema(), **kwargs) as writer:
        for seed, length in zip(seeds, lengths, strict=True):
            writer.begin_episode(source="teleop", task="t")
            writer.append_batch(helpers.episode(seed, length))
            writer.commit(success=True)


def expected_frames(key, seeds, lengths):
    return np.concatenate([helpers.episode(s, n)[key] for s, n in zip(seeds, lengths, strict=True)])


def test_plain_zarr_reads_what_the_writer_appends(tmp_path):
    path = tmp_path / "s.zarr"
    seeds, lengths = [0, 1, 2, 3], [3, 6, 1, 9]  # tails end inside, at and across shards
    write(path, seeds, lengths, shard_frames=SHARD)
    rows = sum(lengths)
    assert validate(path) == []
    for key in ("camera_front", "camera_depth"):
        array = zarr.open_array(path / "data" / key, mode="r")  # plain zarr, no fast path
        assert is_sharded(array) and array.shape[0] == rows
        np.testing.assert_array_equal(StoreReader(path).read_frames(key, range(rows)), array[:])
        shard_files = sorted((path / "data" / key / "c").iterdir())
        assert len(shard_files) == -(-rows // SHARD)  # one file per shard, not per frame
    depth = zarr.open_array(path / "data" / "camera_depth", mode="r")[:]
    np.testing.assert_array_equal(depth, expected_frames("camera_depth", seeds, lengths))
    front = zarr.open_array(path / "data" / "camera_front", mode="r")[:]
    assert helpers.psnr(front, expected_frames("camera_front", seeds, lengths)) > 35


def test_reader_reads_shards_that_zarr_wrote(tmp_path):
    path = tmp_path / "s.zarr"
    write(path, [0], [10], shard_frames=SHARD)
    array = zarr.open_array(path / "data" / "camera_depth", mode="r+")
    new = helpers.episode(7, 10)["camera_depth"]
    new[3] = 0  # an all-fill frame: zarr stores no chunk for it
    array[:] = new
    np.testing.assert_array_equal(StoreReader(path).read_frames("camera_depth", range(10)), new)


def test_a_commit_rewrites_only_the_tail_shard_once(tmp_path):
    path = tmp_path / "s.zarr"
    with StoreWriter(path, helpers.schema(), shard_frames=SHARD) as writer:
        files = writer._frames["camera_front"]
        assert isinstance(files, ShardFiles)
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(0, 10))  # 2 full shards + 2 rows of a third
        writer.commit(success=True)
        assert files.files_written == 3  # two full shards written once, the tail once
        writer.begin_episode(source="teleop", task="t")
        for step in range(5):  # rows 10..14: completes the third shard, starts a fourth
            writer.append({k: v[step] for k, v in helpers.episode(1, 5).items()})
        writer.commit(success=True)
        assert files.files_written == 5


def test_discarded_episodes_leave_committed_frames_alone(tmp_path):
    path = tmp_path / "s.zarr"
    with StoreWriter(path, helpers.schema(), shard_frames=SHARD) as writer:
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(0, 3))
        writer.commit(success=True)
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(5, 11))  # fills shards with rows never committed
        writer._drain()
        writer.discard()
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(1, 2))
        writer.commit(success=True)
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(6, 9))  # discarded at close
    write(path, [2], [4], shard_frames=SHARD)  # the next writer appends after the commits
    seeds, lengths = [0, 1, 2], [3, 2, 4]
    reader = StoreReader(path)
    assert reader.num_episodes == 3 and validate(path) == []
    got = reader.read_frames("camera_depth", range(9))
    np.testing.assert_array_equal(got, expected_frames("camera_depth", seeds, lengths))


def test_stores_from_before_sharding_still_read_and_append(tmp_path):
    path = tmp_path / "old.zarr"
    write(path, [0, 1], [5, 4], shard_frames=1)  # the per-frame layout of older stores
    assert len(list((path / "data" / "camera_front" / "c").iterdir())) == 9
    write(path, [2], [3])  # a current writer keeps each array's own layout
    reader = StoreReader(path)
    assert not is_sharded(reader.array("camera_front")) and validate(path) == []
    np.testing.assert_array_equal(
        reader.read_frames("camera_depth", range(12)),
        expected_frames("camera_depth", [0, 1, 2], [5, 4, 3]),
    )
    write(tmp_path / "new.zarr", [0], [2])
    assert SHARD_FRAMES > 1 and is_sharded(StoreReader(tmp_path / "new.zarr").array("camera_front"))
