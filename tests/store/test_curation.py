"""Excluding bad demos, listing and filtering, while collection may still be running."""

from __future__ import annotations

import numpy as np

from robot_learning.store import StoreReader, StoreWriter
from robot_learning.store.curation import set_excluded
from tests.store import helpers


def test_exclusion_survives_concurrent_commits_and_is_reversible(tmp_path):
    path = tmp_path / "c.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        for seed in range(3):
            writer.begin_episode(source="teleop", task="lift" if seed else "push")
            writer.append_batch(helpers.episode(seed, 5))
            writer.commit(success=seed != 2)
        set_excluded(path, [1], excluded=True, reason="cube fell off the table")
        for seed in range(3, 5):  # the writer keeps committing after the exclusion
            writer.begin_episode(source="teleop", task="lift")
            writer.append_batch(helpers.episode(seed, 5))
            writer.commit(success=True)
    reader = StoreReader(path)
    assert reader.episode(1).excluded
    assert reader.episode(1).curation.reason == "cube fell off the table"
    assert reader.select() == [0, 2, 3, 4]
    assert reader.select(include_excluded=True) == [0, 1, 2, 3, 4]
    assert reader.select(task="lift", success=True) == [3, 4]
    # The data of the excluded episode is untouched.
    np.testing.assert_array_equal(reader.read_episode(1)["action"], helpers.episode(1, 5)["action"])
    set_excluded(path, [1], excluded=False)
    assert StoreReader(path).select() == [0, 1, 2, 3, 4]


def test_excluding_an_uncommitted_episode_is_refused(tmp_path):
    path = tmp_path / "c.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        writer.begin_episode(source="teleop", task="lift")
        writer.append_batch(helpers.episode(0, 5))
        writer.commit(success=True)
    import pytest

    from robot_learning.store import StoreInputError

    with pytest.raises(StoreInputError, match=r"no committed episode \[1\]"):
        set_excluded(path, [1], excluded=True)
