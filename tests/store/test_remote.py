"""Stores on other machines read through zarr's fsspec support (here: fsspec's memory://)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.store import StoreError, StoreReader, StoreWriter
from robot_learning.store.sampler import SequenceDataset
from robot_learning.store.validate import validate
from tests.store import helpers

fsspec = pytest.importorskip("fsspec")


def test_training_reads_a_remote_store(tmp_path):
    local = tmp_path / "s.zarr"
    with StoreWriter(local, helpers.schema()) as writer:
        for seed in range(2):
            writer.begin_episode(source="teleop", task="lift")
            writer.append_batch(helpers.episode(seed, 6))
            writer.commit(success=True)
    memory = fsspec.filesystem("memory")
    for path in local.rglob("*"):
        if path.is_file():
            memory.pipe(f"/remote-test/s.zarr/{path.relative_to(local)}", path.read_bytes())
    url = "memory://remote-test/s.zarr"

    remote = StoreReader(url)
    assert remote.num_episodes == 2 and remote.size_on_disk() is None
    local_reader = StoreReader(local)
    np.testing.assert_array_equal(
        remote.read_frames("camera_front", [1, 8]), local_reader.read_frames("camera_front", [1, 8])
    )
    np.testing.assert_array_equal(remote.read_episode(1)["action"], helpers.episode(1, 6)["action"])
    assert validate(url) == []
    sample = SequenceDataset(url, obs_keys=["camera_front"], action_keys=["action"])[3]
    assert sample["camera_front"].shape == (2, 3, *helpers.IMAGE_SHAPE[:2])
    with pytest.raises(StoreError, match="local path"):
        StoreWriter(url)
