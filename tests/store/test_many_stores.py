"""Several stores trained as one (one set of normalization statistics), and `rl store merge`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_learning.store import (
    Codec,
    KeySpec,
    StoreError,
    StoreReader,
    StoreSchema,
    StoreWriter,
)
from robot_learning.store.normalization import compute_stats
from robot_learning.store.rebuild import merge
from robot_learning.store.sampler import SequenceDataset, make_loader
from robot_learning.store.validate import validate
from tests.store import helpers

ROOT = Path(__file__).resolve().parents[2]


def store(path: Path, seeds: list[int], lengths: list[int]) -> Path:
    with StoreWriter(path, helpers.schema()) as writer:
        for seed, length in zip(seeds, lengths, strict=True):
            writer.begin_episode(source="teleop", task="lift", notes={"seed": seed})
            writer.append_batch(helpers.episode(seed, length))
            writer.commit(success=True)
    return path


@pytest.fixture
def two_stores(tmp_path):
    return store(tmp_path / "robot_a.zarr", [0, 1, 2], [7, 5, 9]), store(
        tmp_path / "robot_b.zarr", [10, 11], [6, 8]
    )


def test_sampler_trains_on_several_stores_as_one(two_stores, tmp_path):
    a, b = two_stores
    norm = {"robot_state": "mean_std", "action": "min_max"}
    both = SequenceDataset(
        [a, b], obs_keys=["camera_front", "robot_state"], action_keys=["action"], normalization=norm
    )
    assert len(both) == 7 + 5 + 9 + 6 + 8
    assert both.episodes == [[0, 1, 2], [0, 1]]
    # A sample of the second store: its own frames and actions, normalized with pooled stats.
    sample = both.get_batch([21 + 6 + 3])  # store b, episode 1, step 3
    assert int(sample["store"][0]) == 1 and int(sample["episode"][0]) == 1
    assert int(sample["step"][0]) == 3
    frames = StoreReader(b).read_frames("camera_front", [6 + 2, 6 + 3])
    np.testing.assert_array_equal(sample["camera_front"][0].permute(0, 2, 3, 1).numpy(), frames)
    # The statistics are those of all episodes of both stores at once (checked on a merge).
    merged = tmp_path / "merged.zarr"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "store",
            "merge",
            str(a),
            str(b),
            "--to",
            str(merged),
        ],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    reader = StoreReader(merged)
    truth = compute_stats(reader, list(norm), list(range(reader.num_episodes)))
    for key in norm:
        for field in ("min", "max", "mean", "std"):
            np.testing.assert_allclose(
                getattr(both.stats[key], field), getattr(truth[key], field), rtol=1e-9, atol=1e-12
            )
    action = helpers.episode(11, 8)["action"][3]
    stats = both.stats["action"]
    scaled = 2 * (action - np.array(stats.min)) / (np.array(stats.max) - np.array(stats.min)) - 1
    np.testing.assert_allclose(sample["action"][0][0].numpy(), scaled, rtol=1e-5, atol=1e-6)
    # Batches mixing both stores come through loader workers.
    loader = make_loader(both, batch_size=8, num_workers=1, shuffle=True)
    batch = next(iter(loader))
    assert batch["camera_front"].shape == (8, 2, 3, *helpers.IMAGE_SHAPE[:2])


def test_merge_keeps_every_episode_and_says_where_it_came_from(two_stores, tmp_path):
    a, b = two_stores
    report = merge([a, b], tmp_path / "m.zarr")
    merged = StoreReader(tmp_path / "m.zarr")
    assert report.episodes == 5 == merged.num_episodes and validate(tmp_path / "m.zarr") == []
    for new, (source, old) in enumerate([(a, 0), (a, 1), (a, 2), (b, 0), (b, 1)]):
        info = merged.episode(new).info
        assert info.index == new
        assert info.notes["merged_from"] == {"store": str(source), "episode": old}
        seed = info.notes["seed"]
        want = helpers.episode(seed, merged.episode(new).length)
        got = merged.read_episode(new)
        assert helpers.lossless_digest(got) == helpers.lossless_digest(want)
        original = StoreReader(source).read_episode(old)
        np.testing.assert_array_equal(got["camera_front"], original["camera_front"])
    assert json.loads(merged.episode(4).info.to_json())["checksums"]


def test_stores_that_disagree_are_named(two_stores, tmp_path):
    a, _ = two_stores
    other = tmp_path / "other.zarr"
    schema = StoreSchema(
        keys={
            "camera_front": KeySpec((24, 32, 3), "uint8", Codec.JPEG),
            "robot_state": KeySpec((7,), "float32"),
            "action": KeySpec((8,), "float64"),
        }
    )
    with StoreWriter(other, schema) as writer:
        writer.begin_episode(source="teleop", task="lift")
        writer.append_batch(
            {
                "camera_front": np.zeros((3, 24, 32, 3), np.uint8),
                "robot_state": np.zeros((3, 7), np.float32),
                "action": np.zeros((3, 8)),
            }
        )
        writer.commit(success=True)
    with pytest.raises(ValueError, match=r"other.zarr: key 'camera_front' is uint8 \(24, 32, 3\)"):
        SequenceDataset([a, other], obs_keys=["camera_front"], action_keys=["action"])
    with pytest.raises(StoreError, match="cannot merge"):
        merge([a, other], tmp_path / "bad.zarr")
    assert not (tmp_path / "bad.zarr").exists()
