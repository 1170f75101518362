"""Every dtype and codec survives a write/read cycle through real files."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.store import (
    Codec,
    KeySpec,
    Source,
    StoreInputError,
    StoreReader,
    StoreSchema,
    StoreWriter,
)
from tests.store import helpers

JPEG_MIN_PSNR_DB = 35.0  # quality 90 on camera-like frames
JPEGXL_MIN_PSNR_DB = 32.0  # quality 90 (butteraugli distance 1: tuned for the eye, not PSNR)


def test_every_dtype_and_codec_round_trips(tmp_path):
    schema = StoreSchema(
        keys={
            "rgb_jpeg": KeySpec((48, 64, 3), "uint8", Codec.JPEG, quality=90),
            "gray_jpeg": KeySpec((48, 64), "uint8", Codec.JPEG, quality=95),
            "rgb_jpegxl": KeySpec((48, 64, 3), "uint8", Codec.JPEGXL, quality=90),
            "rgb_jpegxl_lossless": KeySpec((48, 64, 3), "uint8", Codec.JPEGXL, quality=100),
            "depth": KeySpec((48, 64), "uint16", Codec.DEPTH),
            "mask": KeySpec((48, 64), "uint8", Codec.RAW_IMAGE),
            "f32": KeySpec((7,), "float32"),
            "f64": KeySpec((2, 3), "float64"),
            "i64": KeySpec((3,), "int64"),
            "i16": KeySpec((3,), "int16"),
            "u8": KeySpec((5,), "uint8"),
            "flag": KeySpec((), "bool"),
            "scalar": KeySpec((), "float64"),
        }
    )
    rng = np.random.default_rng(0)
    n = 23
    frames = np.stack([helpers.smooth_image(1, t) for t in range(n)])
    data = {
        "rgb_jpeg": frames,
        "gray_jpeg": frames[..., 0],
        "rgb_jpegxl": frames,
        "rgb_jpegxl_lossless": frames,
        "depth": rng.integers(0, 65535, (n, 48, 64), dtype=np.uint16),
        "mask": rng.integers(0, 255, (n, 48, 64), dtype=np.uint8),
        "f32": rng.normal(size=(n, 7)).astype(np.float32),
        "f64": rng.normal(size=(n, 2, 3)),
        "i64": rng.integers(-(2**40), 2**40, (n, 3)),
        "i16": rng.integers(-30000, 30000, (n, 3)).astype(np.int16),
        "u8": rng.integers(0, 255, (n, 5), dtype=np.uint8),
        "flag": rng.random(n) > 0.5,
        "scalar": rng.normal(size=n),
    }
    path = tmp_path / "all.zarr"
    with StoreWriter(path, schema) as writer:
        writer.begin_episode(source="teleop", task="roundtrip")
        writer.append_batch({k: v[:10] for k, v in data.items()})
        for t in range(10, n):  # single steps too
            writer.append({k: v[t] for k, v in data.items()})
        writer.commit(success=True)

    out = StoreReader(path).read_episode(0)
    for key in (
        "rgb_jpegxl_lossless",
        "depth",
        "mask",
        "f32",
        "f64",
        "i64",
        "i16",
        "u8",
        "flag",
        "scalar",
    ):
        assert out[key].dtype == data[key].dtype, key
        np.testing.assert_array_equal(out[key], data[key], err_msg=key)
    assert helpers.psnr(out["rgb_jpeg"], frames) >= JPEG_MIN_PSNR_DB
    assert helpers.psnr(out["gray_jpeg"], frames[..., 0]) >= JPEG_MIN_PSNR_DB
    assert helpers.psnr(out["rgb_jpegxl"], frames) >= JPEGXL_MIN_PSNR_DB
    assert out["rgb_jpeg"].shape == frames.shape and out["rgb_jpeg"].dtype == np.uint8


def test_fast_frame_reads_match_zarr_reads(tmp_path):
    path = tmp_path / "s.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(3, 12))
        writer.commit(success=True)
    reader = StoreReader(path)
    fast = reader.read_frames("camera_front", [0, 5, 11])
    slow = np.asarray(reader.array("camera_front")[[0, 5, 11]])
    np.testing.assert_array_equal(fast, slow)


def test_robot_and_human_video_episodes_coexist(tmp_path):
    path = tmp_path / "mixed.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        for seed in range(3):
            writer.begin_episode(source=Source.TELEOP, task="lift", operator="ana")
            writer.append_batch(helpers.episode(seed, 10 + seed))
            writer.commit(success=seed != 1)
        writer.begin_episode(source=Source.HUMAN_VIDEO, task="lift", operator="ben")
        video = helpers.episode(9, 7)
        writer.append_batch(
            {"camera_front": video["camera_front"], "timestamp": video["timestamp"]}
        )
        writer.commit(success=True)

    reader = StoreReader(path)
    assert reader.num_episodes == 4 and reader.num_steps == 10 + 11 + 12 + 7
    assert reader.select(source="human_video") == [3]
    assert reader.select(source="teleop", success=True) == [0, 2]
    assert reader.select(task="push") == []
    human = reader.episode(3)
    assert set(human.info.keys) == {"camera_front", "timestamp"}
    assert np.isnan(reader.read_episode(3, ["robot_state"])["robot_state"]).all()
    robot = reader.read_episode(2)
    np.testing.assert_array_equal(robot["action"], helpers.episode(2, 12)["action"])


def test_streams_of_different_rates(tmp_path):
    schema = StoreSchema(
        keys={
            "camera": KeySpec((16, 16, 3), "uint8", Codec.JPEG),
            "timestamp": KeySpec((), "float64"),
            "state_100hz": KeySpec((7,), "float64", stream="state"),
            "state_timestamp": KeySpec((), "float64", stream="state"),
        },
        stream_rates_hz={"step": 30.0, "state": 100.0},
    )
    path = tmp_path / "streams.zarr"
    with StoreWriter(path, schema) as writer:
        for length in (30, 45):
            writer.begin_episode(source="teleop", task="t")
            for t in range(length):
                writer.append({"camera": np.zeros((16, 16, 3), np.uint8), "timestamp": t / 30})
            for t in range(length * 10 // 3):
                writer.append(
                    {"state_100hz": np.full(7, t), "state_timestamp": t / 100}, stream="state"
                )
            writer.commit(success=True)
    reader = StoreReader(path)
    np.testing.assert_array_equal(reader.episode_ends, [30, 75])
    np.testing.assert_array_equal(reader.stream_ends("state"), [100, 250])
    second = reader.read_episode(1, ["state_100hz", "timestamp"])
    assert second["state_100hz"].shape == (150, 7) and second["timestamp"].shape == (45,)
    np.testing.assert_array_equal(second["state_100hz"][:, 0], np.arange(150))


def test_new_keys_can_be_added_to_an_existing_store(tmp_path):
    path = tmp_path / "grow.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(0, 5))
        writer.commit(success=True)
    wider = StoreSchema(
        keys={**helpers.schema().keys, "camera_wrist": KeySpec((8, 8, 3), "uint8", Codec.JPEG)}
    )
    with StoreWriter(path, wider) as writer:
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(
            {**helpers.episode(1, 4), "camera_wrist": np.full((4, 8, 8, 3), 200, np.uint8)}
        )
        writer.commit(success=True)
    reader = StoreReader(path)
    assert "camera_wrist" not in reader.episode(0).info.keys
    assert abs(int(reader.read_episode(1, ["camera_wrist"])["camera_wrist"].mean()) - 200) <= 2
    conflicting = StoreSchema(keys={"robot_state": KeySpec((6,), "float32")})
    with pytest.raises(StoreInputError, match="robot_state"):
        StoreWriter(path, conflicting)


def test_caller_may_reuse_its_buffers_after_append(tmp_path):
    """Camera drivers hand out recycled buffers: the stored row is the value at append time."""
    path = tmp_path / "reuse.zarr"
    data = helpers.episode(4, 20)
    frame = np.empty(helpers.IMAGE_SHAPE, np.uint8)
    depth = np.empty(helpers.IMAGE_SHAPE[:2], np.uint16)
    state = np.empty(7, np.float32)
    with StoreWriter(path, helpers.schema()) as writer:
        writer.begin_episode(source="teleop", task="t")
        for t in range(20):
            frame[:] = data["camera_front"][t]
            depth[:] = data["camera_depth"][t]
            state[:] = data["robot_state"][t]
            writer.append(
                {
                    "camera_front": frame,
                    "camera_depth": depth,
                    "robot_state": state,
                    "action": data["action"][t],
                    "timestamp": data["timestamp"][t],
                }
            )
        frame[:] = 0
        depth[:] = 0
        state[:] = 0
        writer.commit(success=True)
    out = StoreReader(path).read_episode(0)
    np.testing.assert_array_equal(out["camera_depth"], data["camera_depth"])
    np.testing.assert_array_equal(out["robot_state"], data["robot_state"])
    assert helpers.psnr(out["camera_front"], data["camera_front"]) > 35


def test_only_all_zero_frames_are_left_as_the_fill(tmp_path):
    """An all-zero frame stores nothing (zarr's fill value); a frame with one non-zero pixel
    anywhere, also between the pixels sampled before a full scan, keeps its pixel."""
    shape = (48, 64)
    schema = StoreSchema(keys={"mask": KeySpec(shape, "uint8", Codec.RAW_IMAGE)})
    positions = range(0, shape[0] * shape[1], 7)
    frames = np.zeros((2 + len(positions), *shape), np.uint8)
    for i, flat in enumerate(positions, start=2):
        frames[i].reshape(-1)[flat] = 1 + i % 250  # frame 0 and 1 stay all zero
    path = tmp_path / "fill.zarr"
    with StoreWriter(path, schema) as writer:
        writer.begin_episode(source="teleop", task="fill")
        writer.append_batch({"mask": frames})
        writer.commit(success=True)
    reader = StoreReader(path)
    np.testing.assert_array_equal(reader.read_episode(0)["mask"], frames)
    files = reader.frame_files("mask")
    assert files.read_encoded(0) is None and files.read_encoded(1) is None
    assert all(files.read_encoded(i) is not None for i in range(2, len(frames)))
