"""Bad input gets an error naming file, episode and key, and loses nothing already stored."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from robot_learning.store import (
    NotAStoreError,
    StoreCorruptError,
    StoreInputError,
    StoreLockedError,
    StoreReader,
    StoreWriter,
)
from robot_learning.store.validate import validate
from tests.rl_cli import run_rl
from tests.store import helpers


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "demo.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        for seed in range(3):
            writer.begin_episode(source="teleop", task="lift")
            writer.append_batch(helpers.episode(seed, 6 + seed))
            writer.commit(success=True)
    return path


def rl(*args: str) -> subprocess.CompletedProcess:
    return run_rl(*args, timeout=120)


def test_wrong_shape_dtype_and_nan_are_rejected_without_losing_the_episode(store):
    data = helpers.episode(7, 4)
    with StoreWriter(store) as writer:
        writer.begin_episode(source="teleop", task="lift")
        writer.append({k: v[0] for k, v in data.items()})
        with pytest.raises(StoreInputError, match=r"episode 3, key 'robot_state'.*shape \(7,\)"):
            writer.append({**{k: v[1] for k, v in data.items()}, "robot_state": np.zeros(6)})
        with pytest.raises(StoreInputError, match=r"key 'camera_front'.*dtype uint8.*float64"):
            writer.append(
                {
                    **{k: v[1] for k, v in data.items()},
                    "camera_front": np.zeros(helpers.IMAGE_SHAPE),
                }
            )
        with pytest.raises(StoreInputError, match=r"key 'action'.*non-finite"):
            writer.append(
                {
                    **{k: v[1] for k, v in data.items()},
                    "action": np.array([0, 1, np.nan, 0, 0, 0, 0, 1.0]),
                }
            )
        with pytest.raises(StoreInputError, match=r"missing \['timestamp'\]"):
            writer.append({k: v[1] for k, v in data.items() if k != "timestamp"})
        with pytest.raises(StoreInputError, match=r"key 'gripper' is not in stream"):
            writer.append({**{k: v[1] for k, v in data.items()}, "gripper": 1.0})
        for t in range(1, 4):  # the episode carries on after the rejected steps
            writer.append({k: v[t] for k, v in data.items()})
        writer.commit(success=True)
    reader = StoreReader(store)
    assert reader.num_episodes == 4 and reader.episode(3).length == 4
    np.testing.assert_array_equal(reader.read_episode(3)["action"], data["action"])
    assert validate(store) == []


def test_nan_allowed_when_asked(store):
    data = helpers.episode(8, 2)
    data["action"][1, 2] = np.inf
    with StoreWriter(store, allow_nonfinite=True) as writer:
        writer.begin_episode(source="policy", task="lift")
        writer.append_batch(data)
        writer.commit(success=False)
    assert np.isinf(StoreReader(store).read_episode(3)["action"][1, 2])


def test_corrupted_chunk_is_reported_with_episode_and_key(store):
    reader = StoreReader(store)
    start, _ = reader.episode(1).rows["step"]
    helpers.replace_frame_bytes(store, "camera_front", start + 2, b"\xff\xd8 definitely not a jpeg")
    problems = validate(store)
    assert len(problems) == 1
    assert problems[0].episode == 1 and problems[0].key == "camera_front"
    with pytest.raises(StoreCorruptError, match=r"camera_front.*episode 1"):
        reader.read_frames("camera_front", [start + 2])
    # Other episodes still read fine.
    assert reader.read_episode(0)["camera_front"].shape[0] == 6
    result = rl("store", "validate", str(store))
    assert result.returncode == 1
    assert "episode 1, key 'camera_front'" in result.stdout


def test_corrupted_lowdim_chunk_fails_checksum_or_decode(store):
    chunk = store / "data" / "robot_state" / "c" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[-5] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    problems = validate(store)
    assert problems and all(p.key == "robot_state" for p in problems)
    assert {p.episode for p in problems} == {0, 1, 2}  # one chunk holds all three episodes


def test_truncated_metadata_is_named_and_nothing_is_deleted(store):
    meta = store / "data" / "robot_state" / "zarr.json"
    meta.write_text(meta.read_text()[:40])
    files_before = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    problems = validate(store)
    assert any("data/robot_state/zarr.json" in str(p) for p in problems)
    with pytest.raises(StoreCorruptError, match="data/robot_state/zarr.json"):
        StoreWriter(store)
    files_after = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    assert files_after == files_before


def test_truncated_root_metadata(store):
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_t')
    with pytest.raises(StoreCorruptError, match="zarr.json"):
        StoreReader(store)
    result = rl("store", "info", str(store))
    assert result.returncode == 2 and "zarr.json" in result.stderr  # a damaged store: bad input
    assert "Traceback" not in result.stderr


def test_path_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NotAStoreError, match="not a robot_learning store"):
        StoreReader(tmp_path)
    with pytest.raises(Exception, match="not empty and is not a store"):
        StoreWriter(tmp_path, helpers.schema())
    result = rl("store", "info", str(tmp_path))
    assert result.returncode == 2 and "not a robot_learning store" in result.stderr
    missing = rl("store", "validate", str(tmp_path / "missing.zarr"))  # nothing to validate
    assert missing.returncode == 2 and "missing.zarr" in missing.stderr
    assert (tmp_path / "notes.txt").read_text() == "hello"


def test_second_writer_is_refused(store):
    with StoreWriter(store), pytest.raises(StoreLockedError, match="writer lock.*pid"):
        StoreWriter(store)


def test_info_json_and_validate_exit_status(store):
    result = rl("store", "info", str(store), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["episodes"] == 3 and info["steps"] == 6 + 7 + 8
    assert info["keys"]["camera_front"]["codec"] == "jpeg"
    assert info["keys"]["camera_front"]["shape"] == list(helpers.IMAGE_SHAPE)
    assert info["sources"] == {"teleop": 3}
    assert rl("store", "validate", str(store)).returncode == 0


def test_missing_key_and_declaration_mismatch_are_reported(store):
    import shutil

    shutil.rmtree(store / "data" / "action")
    meta = store / "data" / "robot_state" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["data_type"] = "float64"
    meta.write_text(json.dumps(doc))
    problems = {(p.key, p.message.split(" (")[0]) for p in validate(store)}
    assert any(key == "action" and "missing array" in msg for key, msg in problems), problems
    assert ("robot_state", "dtype float64, schema says float32") in problems
    result = rl("store", "validate", str(store))
    assert result.returncode == 1 and "key 'action'" in result.stdout
