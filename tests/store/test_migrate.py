"""`rl store migrate`: per-frame stores to shards, in place or to a new path, and a SIGKILL at
any instant of it loses nothing."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from robot_learning.store import SCHEMA_VERSION, StoreError, StoreReader, StoreWriter, layout
from robot_learning.store.frame_files import is_sharded
from robot_learning.store.rebuild import BUILDING_SUFFIX, is_current_layout, migrate
from robot_learning.store.validate import validate
from tests.store import helpers
from tests.store.crash_writer import length
from tests.store.test_crash_safety import assert_committed_episodes_intact

ROOT = Path(__file__).resolve().parents[2]
KILLS = 10


def per_frame_store(path: Path, episodes: int) -> Path:
    """A store in the layout of before sharding, with the crash test's episodes."""
    with StoreWriter(path, helpers.schema(), shard_frames=1, durable=False) as writer:
        for seed in range(episodes):
            writer.begin_episode(source="teleop", task="crash", notes={"seed": seed})
            writer.append_batch(helpers.episode(seed, length(seed)))
            writer.commit(success=seed % 3 != 0)
    root = zarr.open_group(path, mode="r+")  # as software before sharding wrote it
    root.attrs[layout.ROOT_ATTR] = {**root.attrs[layout.ROOT_ATTR], "schema_version": 1}
    return path


def rl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_migrate_in_place_and_to_a_new_path(tmp_path):
    path = per_frame_store(tmp_path / "old.zarr", 6)
    reader = StoreReader(path)
    before = {e: reader.read_episode(e) for e in range(6)}
    fingerprint, files_before = reader.fingerprint(), sum(1 for _ in path.rglob("*"))
    live = StoreReader(path)  # a training reader left open across the in-place migration
    live.read_frames("camera_depth", [0, 1])

    result = rl("store", "migrate", str(path), "--to", str(tmp_path / "new.zarr"))
    assert result.returncode == 0, result.stderr
    assert "6 episodes" in result.stdout
    assert not is_current_layout(path) and is_current_layout(tmp_path / "new.zarr")

    report = migrate(path)
    assert report.episodes == 6 and report.files_after < files_before
    migrated = StoreReader(path)
    assert (reader.schema_version, migrated.schema_version) == (1, SCHEMA_VERSION)
    assert is_sharded(migrated.array("camera_front")) and validate(path) == []
    assert migrated.fingerprint() == fingerprint  # the same episodes, records and statistics
    for e, data in before.items():
        got = migrated.read_episode(e)
        for key in data:  # every frame keeps its exact bytes: identical decoded pixels
            np.testing.assert_array_equal(got[key], data[key], err_msg=f"{e} {key}")
    rows = list(range(live.num_steps))
    np.testing.assert_array_equal(
        live.read_frames("camera_depth", rows), migrated.read_frames("camera_depth", rows)
    )
    # A run killed between the exchange and deleting the old store left it beside: removed.
    leftover = path.with_name(path.name + BUILDING_SUFFIX)
    shutil.copytree(tmp_path / "new.zarr", leftover)
    out = rl("store", "migrate", str(path)).stdout
    assert "removed a finished rebuild" in out and "already sharded" in out
    assert not leftover.exists() and validate(path) == []


def test_migrate_refuses_while_a_writer_records(tmp_path):
    path = per_frame_store(tmp_path / "old.zarr", 1)
    with StoreWriter(path), pytest.raises(StoreError, match="writer lock"):
        migrate(path)
    with pytest.raises(StoreError, match="exists"):
        migrate(path, path.parent)


def test_sigkill_during_migration_loses_nothing(tmp_path):
    source = per_frame_store(tmp_path / "source.zarr", 16)
    expected_episodes = StoreReader(source).num_episodes
    # How long a whole migration takes here, so kills land across all of it.
    calibration = tmp_path / "calibration.zarr"
    shutil.copytree(source, calibration)
    out = subprocess.run(
        runner(calibration),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
        check=True,
    ).stdout
    work_s = float(out.split("done ")[1])
    rng = random.Random(7)
    phases = {"before": 0, "during": 0, "after": 0}
    for kill in range(KILLS):
        path = tmp_path / f"k{kill}.zarr"
        shutil.copytree(source, path)
        to = None if kill % 3 else tmp_path / f"k{kill}-new.zarr"
        process = subprocess.Popen(
            runner(path, to),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )
        assert process.stdout.readline().strip() == "start"
        try:
            process.wait(timeout=rng.uniform(0.0, 1.1 * work_s))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=30)
        assert "Traceback" not in stderr, stderr
        target = to or path
        building = target.with_name(target.name + BUILDING_SUFFIX)
        finished = (target / "zarr.json").exists() and is_current_layout(target)
        phases[
            "after"
            if finished and not building.exists()
            else "during"
            if building.exists()
            else "before"
        ] += 1
        # The source (or, in place, whatever the store is now) holds every episode, as-is.
        assert assert_committed_episodes_intact(path) == expected_episodes
        assert validate(path) == []
        if to is not None:
            assert not to.exists() or assert_committed_episodes_intact(to) == expected_episodes
        # Running it again finishes the job from whatever the kill left.
        if not (to is not None and to.exists()):
            report = migrate(path, to)
            assert report.episodes in (0, expected_episodes)
        assert is_current_layout(target) and validate(target) == []
        assert assert_committed_episodes_intact(target) == expected_episodes
        assert not building.exists()
    print(f"kills before / during / after the rebuild: {phases}")
    assert phases["during"] >= 3, phases  # most kills landed inside a migration


def runner(path: Path, to: Path | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.store.migrate_runner",
        str(path),
        *([str(to)] if to else []),
    ]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}
