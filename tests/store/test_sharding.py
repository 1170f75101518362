"""Sharded image arrays: plain zarr reads them, appends rewrite only the tail shard, once per
commit, and stores from before sharding (a file per frame) keep working."""

from __future__ import annotations

import numpy as np
import zarr

from robot_learning.store import StoreReader, StoreSchema, StoreWriter
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


def test_episodes_without_a_camera_need_no_shard_files_for_it(tmp_path):
    """Robot demos with a camera, then human videos without it: whole shards of that camera's
    rows hold no frame (no file is written) and the store is sound; a lost file holding real
    frames is still found."""
    path = tmp_path / "s.zarr"
    write(path, [0, 1], [5, 4], shard_frames=SHARD)  # camera_front rows 0..8
    full = helpers.schema()
    without = StoreSchema(keys={k: v for k, v in full.keys.items() if k != "camera_front"})
    with StoreWriter(path, without, shard_frames=SHARD) as writer:
        for seed in (2, 3, 4):  # 15 rows without the camera: shards 3..5 hold no frame of it
            writer.begin_episode(source="human_video", task="t")
            data = helpers.episode(seed, 5)
            del data["camera_front"]
            writer.append_batch(data)
            writer.commit(success=True)
    write(path, [5], [3], shard_frames=SHARD)  # the camera again, rows 24..26
    reader = StoreReader(path)
    assert "camera_front" not in reader.episode(3).info.keys
    files = reader.frame_files("camera_front")
    assert not any(files.shard_path(shard).exists() for shard in (3, 4, 5))
    assert validate(path) == []  # before: three "lost" shard files reported
    assert reader.read_episode(5, ["camera_front"])["camera_front"].shape == (3, 48, 64, 3)
    files.shard_path(6).unlink()  # rows 24..26: episode 5's frames
    problems = validate(path)
    assert len(problems) == 1 and "no shard file for committed rows 24..26" in str(problems[0])
    assert problems[0].episode == 5
