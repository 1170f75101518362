"""SIGKILL a writer at random instants; committed episodes must survive byte for byte."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robot_learning.store import StoreReader, StoreWriter, layout, recover
from robot_learning.store.errors import NotAStoreError
from robot_learning.store.validate import validate
from tests.store import helpers
from tests.store.crash_writer import length

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20
TAIL_PROBLEMS = (
    "rows past the last commit",
    "half-written commit",
    "interrupted write",
    "uncommitted episode",
)


def start_writer(path: Path, episodes: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", str(path), str(episodes)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def assert_committed_episodes_intact(path: Path) -> int:
    reader = StoreReader(path)
    for ep in reader.episodes:
        seed = ep.info.notes["seed"]
        assert seed == ep.index
        expected = helpers.episode(seed, length(seed))
        got = reader.read_episode(ep.index)
        assert helpers.lossless_digest(got) == helpers.lossless_digest(expected), ep.index
        assert helpers.psnr(got["camera_front"], expected["camera_front"]) > 35
    return reader.num_episodes


def test_sigkill_at_random_instants_never_loses_committed_episodes(tmp_path):
    path = tmp_path / "crash.zarr"
    rng = random.Random(1234)
    committed_before = 0
    recovered_messages = 0
    for kill in range(KILLS):
        writer = start_writer(path, episodes=1000)
        assert writer.stdout is not None and writer.stdout.readline() == "started\n"
        time.sleep(rng.uniform(0.2, 1.2) if kill % 3 else rng.uniform(0.0, 0.4))
        writer.send_signal(signal.SIGKILL)
        _, stderr = writer.communicate(timeout=30)
        assert "Traceback" not in stderr, stderr
        recovered_messages += "dropped uncommitted episode" in stderr
        if not layout.is_store(path):  # killed before the store was created: nothing to lose
            if (path / "zarr.json").exists():  # killed inside the creation: a clear answer
                with pytest.raises(NotAStoreError, match="creation was interrupted"):
                    StoreReader(path)
            continue
        # Readable as-is, with no repair: every committed episode is intact.
        committed = assert_committed_episodes_intact(path)
        assert committed >= committed_before
        committed_before = committed
        # Before recovery, validation may only complain about the uncommitted tail...
        for problem in validate(path):
            assert any(p in problem.message for p in TAIL_PROBLEMS), str(problem)
        if kill % 2:
            recover(path)  # ...and after it (explicit, or by the next writer) none remain.
            assert validate(path) == []
    assert committed_before >= 10, "the writer never got far enough to test much"
    assert recovered_messages > 0, "no kill landed inside an episode"
    # A final writer run finishes cleanly on top of all that.
    with StoreWriter(path) as writer:
        assert writer.num_episodes == committed_before
    assert validate(path) == []
    assert assert_committed_episodes_intact(path) == committed_before


def test_a_creation_killed_before_its_root_attribute_is_not_a_store_until_a_writer_finishes(
    tmp_path,
):
    """The state a SIGKILL leaves between creating the arrays and writing the root attribute."""
    import json

    path = tmp_path / "half.zarr"
    with StoreWriter(path, helpers.schema()):
        pass
    root_json = path / "zarr.json"
    document = json.loads(root_json.read_text())
    del document["attributes"][layout.ROOT_ATTR]
    root_json.write_text(json.dumps(document))

    with pytest.raises(NotAStoreError, match="creation was interrupted before anything"):
        StoreReader(path)
    with StoreWriter(path, helpers.schema()) as writer:  # the next writer finishes it
        data = helpers.episode(0, length(0))
        writer.begin_episode(source="teleop", task="crash", notes={"seed": 0})
        for t in range(length(0)):
            writer.append({k: v[t] for k, v in data.items()})
        writer.commit(success=True)
    assert validate(path) == []
    assert assert_committed_episodes_intact(path) == 1


def test_reader_sees_only_committed_episodes_while_writer_appends(tmp_path):
    path = tmp_path / "live.zarr"
    with StoreWriter(path, helpers.schema()):
        pass  # create the store so the reader can open it at once
    writer = start_writer(path, episodes=25)
    seen, snapshots = 0, 0
    try:
        while writer.poll() is None or snapshots == 0:
            reader = StoreReader(path)
            assert reader.num_episodes >= seen
            seen = reader.num_episodes
            for ep in reader.episodes[-2:]:  # the newest are the ones racing the writer
                expected = helpers.episode(ep.index, length(ep.index))
                got = reader.read_episode(ep.index, ["robot_state", "action", "timestamp"])
                np.testing.assert_array_equal(got["action"], expected["action"])
                assert len(got["timestamp"]) == length(ep.index)
            snapshots += 1
            time.sleep(0.02)
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0, writer.stderr.read()
    assert StoreReader(path).num_episodes == 25
    assert snapshots > 5
