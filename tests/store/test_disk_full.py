"""A full disk while recording: a clear stop, committed episodes intact, recovery that works on
the full disk, and no episode started below the free-space margin.

Real small filesystems (tmpfs mounted for the test), so ENOSPC comes from the kernel where it
would on a robot's disk; mounting needs root, the tests skip otherwise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robot_learning.store import StoreFullError, StoreReader, StoreWriter
from robot_learning.store.validate import validate
from tests.rl_cli import ROOT, run_rl
from tests.store import helpers

LENGTH = 40


def assert_intact(store: Path, episodes: int) -> None:
    assert validate(store) == []
    reader = StoreReader(store)
    assert reader.num_episodes == episodes
    for seed in range(episodes):
        data, truth = reader.read_episode(seed), helpers.episode(seed, LENGTH)
        for key in ("camera_depth", "robot_state", "action", "timestamp"):
            np.testing.assert_array_equal(data[key], truth[key])


def fill(disk: Path) -> None:
    """Write a filler file until the kernel says the disk is full (ENOSPC)."""
    with open(disk / "filler", "wb") as filler, pytest.raises(OSError, match="No space left"):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()


def test_full_disk_mid_episode_keeps_committed_episodes_and_frees_the_open_one(small_disk):
    store = small_disk(2) / "demos.zarr"
    with StoreWriter(store, helpers.schema()) as writer:
        with pytest.raises(StoreFullError) as error:
            while True:
                data = helpers.episode(writer.num_episodes, LENGTH)
                writer.begin_episode(source="teleop", task="fill")
                for t in range(LENGTH):
                    writer.append({k: v[t] for k, v in data.items()})
                writer.commit(success=True)
        committed = writer.num_episodes
        message = str(error.value)
        writer.discard()  # what every recorder does on an error: frees the open episode's frames
    assert committed >= 2
    assert f"the {committed} committed episodes are intact" in message
    assert f"rl store recover {store}" in message
    assert_intact(store, committed)


def test_recover_on_a_full_disk_frees_uncommitted_data_before_writing(small_disk, tmp_path):
    disk = small_disk(2)
    store = disk / "demos.zarr"
    script = f"""
import time
from robot_learning.store import StoreSchema, StoreWriter
from tests.store import helpers
# Low-dim keys first, as in a recording schema: recovery trims them before the image keys.
keys = sorted(helpers.schema().keys.items(), key=lambda item: item[1].is_image)
with StoreWriter({str(store)!r}, StoreSchema(keys=dict(keys))) as writer:
    for seed in range(2):
        data = helpers.episode(seed, {LENGTH})
        writer.begin_episode(source="teleop", task="crash")
        for t in range({LENGTH}):
            writer.append({{k: v[t] for k, v in data.items()}})
        writer.commit(success=True)
    data = helpers.episode(2, 64)
    writer.begin_episode(source="teleop", task="crash")
    for t in range(64):
        writer.append({{k: v[t] for k, v in data.items()}})
    writer._drain()
    print("recording", flush=True)
    time.sleep(600)
"""
    writer = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "recording"
    writer.send_signal(signal.SIGKILL)  # the recorder dies mid-episode ...
    writer.wait()
    # ... and something else fills the disk.
    fill(disk)
    assert os.statvfs(disk).f_bavail == 0
    result = run_rl("store", "recover", str(store), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "recovered to 2 committed episodes" in result.stdout
    assert (
        "dropped uncommitted episode 2" in result.stdout
        and "MB of uncommitted frames" in result.stdout
    )
    assert_intact(store, 2)


def test_sim_collect_stops_with_a_message_on_a_full_disk(small_disk):
    disk = small_disk(3)
    store = disk / "demos.zarr"
    base = ["sim", "collect", "--task", "lift", "--store", str(store), "--episodes", "20"]
    refused = run_rl(*base, timeout=300)
    assert refused.returncode == 3
    assert "below the margin of 100.0 MB: episode not started" in refused.stderr
    assert "Traceback" not in refused.stderr
    started = time.monotonic()
    full = run_rl(*base, "--min-free-mb", "0", timeout=300)
    assert full.returncode == 3, full.stderr
    assert "Traceback" not in full.stderr and "the disk is full" in full.stderr
    committed = StoreReader(store).num_episodes
    assert f"Safe: the {committed} committed episodes are intact" in full.stderr
    assert committed >= 1 and validate(store) == []
    result = run_rl("store", "recover", str(store), timeout=120)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert time.monotonic() - started < 120


def test_recover_with_nothing_to_free_on_a_full_disk_says_what_to_do(small_disk):
    disk = small_disk(1)
    store = disk / "demos.zarr"
    script = f"""
from robot_learning.store import StoreWriter
from tests.store import helpers
import os
writer = StoreWriter({str(store)!r}, helpers.schema())
writer.begin_episode(source="teleop", task="crash")
os._exit(0)  # dies right after starting an episode: no frames to free
"""
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
    (store / ".space_reserve").unlink()  # as if the writer could not even keep its reserve
    fill(disk)
    result = run_rl("store", "recover", str(store), timeout=120)
    assert result.returncode == 3 and "Traceback" not in result.stderr  # disk full, as collect
    assert "recovery could not write its few KB of metadata" in result.stderr
    assert "Committed episodes are intact" in result.stderr
    (disk / "filler").unlink()
    result = run_rl("store", "recover", str(store), timeout=120)
    assert result.returncode == 0 and "dropped uncommitted episode 0" in result.stdout
    assert validate(store) == []
