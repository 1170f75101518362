"""Annotating committed episodes: round trip through reader, sampler and validation,
overwrite, refusal beside a live recorder, and SIGKILL at random instants."""

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

from robot_learning.store import (
    KeySpec,
    StoreInputError,
    StoreLockedError,
    StoreReader,
    StoreSchema,
    StoreWriter,
    recover,
)
from robot_learning.store.annotate import annotate_episodes
from robot_learning.store.sampler import SequenceDataset
from robot_learning.store.validate import validate
from tests.store import helpers
from tests.store.annotate_runner import KEY, SPEC, label

ROOT = Path(__file__).resolve().parents[2]
TRACK = KeySpec((3, 2), "float32", units="px", description="track points")
GRASP = KeySpec((), "float32", description="grasp flag")
LENGTHS = (6, 9, 7)


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "s.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        for seed, length in enumerate(LENGTHS):
            data = helpers.episode(seed, length)
            writer.begin_episode(source="teleop", task="t")
            writer.append_batch(data)
            writer.commit(success=True)
    return path


def track(seed: int, length: int) -> np.ndarray:
    return np.random.default_rng(100 + seed).uniform(0, 64, (length, 3, 2)).astype(np.float32)


def test_round_trip_through_reader_sampler_and_validation(store):
    rows = [
        (
            e,
            {
                "track_front": track(e, LENGTHS[e]),
                "track_grasp": np.full(LENGTHS[e], e % 2, np.float32),
            },
        )
        for e in (0, 2)
    ]
    report = annotate_episodes(store, {"track_front": TRACK, "track_grasp": GRASP}, rows)
    assert report.declared == ["track_front", "track_grasp"]
    assert sorted(report.annotated) == [0, 2]

    reader = StoreReader(store)
    assert reader.schema.keys["track_front"] == TRACK
    for e in (0, 2):
        got = reader.read_episode(e)
        np.testing.assert_array_equal(got["track_front"], track(e, LENGTHS[e]))
        np.testing.assert_array_equal(got["action"], helpers.episode(e, LENGTHS[e])["action"])
    assert "track_front" not in reader.episode(1).info.keys  # recorded as lacking it
    start, stop = reader.episode(1).rows["step"]
    assert np.isnan(reader.read_rows("track_front", start, stop)).all()
    assert validate(store) == []

    ds = SequenceDataset(
        store,
        obs_keys=["track_front", "robot_state"],
        action_keys=["action"],
        obs_horizon=1,
        action_horizon=2,
        episodes=[0, 2],
    )
    sample = ds[LENGTHS[0] + 3]  # episode 2, step 3
    assert int(sample["episode"]) == 2
    np.testing.assert_allclose(sample["track_front"][0].numpy(), track(2, LENGTHS[2])[3])
    with pytest.raises(ValueError, match=r"'track_front' is missing in episodes \[1\]"):
        SequenceDataset(store, obs_keys=["track_front"], action_keys=["action"])

    # A recorder appends afterwards: its episode lacks the key, everything stays valid.
    with StoreWriter(store) as writer:
        writer.begin_episode(source="teleop", task="t")
        writer.append_batch(helpers.episode(7, 5))
        writer.commit(success=True)
    reader = StoreReader(store)
    assert "track_front" not in reader.episode(3).info.keys
    np.testing.assert_array_equal(
        reader.read_episode(2, ["track_front"])["track_front"], track(2, LENGTHS[2])
    )
    assert validate(store) == []


def test_overwrite_replaces_and_is_otherwise_refused(store):
    annotate_episodes(store, {"track_front": TRACK}, [(1, {"track_front": track(1, 9)})])
    with pytest.raises(
        StoreInputError,
        match=r"episode 1 already has \['track_front'\].*"
        "overwrite=True",
    ):
        annotate_episodes(store, {"track_front": TRACK}, [(1, {"track_front": track(5, 9)})])
    report = annotate_episodes(
        store, {"track_front": TRACK}, [(1, {"track_front": track(5, 9)})], overwrite=True
    )
    assert report.replaced == {1: ["track_front"]} and report.declared == []
    got = StoreReader(store).read_episode(1, ["track_front"])["track_front"]
    np.testing.assert_array_equal(got, track(5, 9))
    assert validate(store) == []


def test_bad_annotations_name_episode_and_key(store):
    with pytest.raises(
        StoreInputError,
        match=r"episode 0, key 'track_front': 5 rows, the "
        "episode has 6",
    ):
        annotate_episodes(store, {"track_front": TRACK}, [(0, {"track_front": track(0, 5)})])
    with pytest.raises(StoreInputError, match="no such committed episode"):
        annotate_episodes(store, {"track_front": TRACK}, [(9, {"track_front": track(0, 5)})])
    with pytest.raises(StoreInputError, match="'action' is stored as float64 \\(8,\\)"):
        annotate_episodes(store, {"action": KeySpec((3,), "float64")}, [])
    nan = track(0, 6)
    nan[2] = np.nan
    with pytest.raises(StoreInputError, match="non-finite"):
        annotate_episodes(store, {"track_front": TRACK}, [(0, {"track_front": nan})])
    annotate_episodes(
        store,
        {"track_front": TRACK},
        [(0, {"track_front": nan})],
        allow_nonfinite=True,
        overwrite=True,
    )
    assert np.isnan(StoreReader(store).read_episode(0, ["track_front"])["track_front"][2]).all()
    assert validate(store) == []


def test_a_failing_labeller_keeps_the_episodes_it_finished(store):
    def rows():
        yield 0, {"track_front": track(0, 6)}
        raise RuntimeError("labeller crashed")

    with pytest.raises(RuntimeError, match="labeller crashed"):
        annotate_episodes(store, {"track_front": TRACK}, rows())
    reader = StoreReader(store)
    assert "track_front" in reader.episode(0).info.keys
    assert validate(store) == []


def test_refused_while_a_recorder_holds_the_store(store):
    with StoreWriter(store) as writer:
        writer.begin_episode(source="teleop", task="t")
        with pytest.raises(StoreLockedError, match="a recorder is writing this store"):
            annotate_episodes(store, {"track_front": TRACK}, [(0, {"track_front": track(0, 6)})])
        writer.append_batch(helpers.episode(3, 4))
        writer.commit(success=True)
    assert "track_front" not in StoreReader(store).schema.keys


def test_sigkill_at_random_instants_leaves_annotations_whole(tmp_path):
    path = tmp_path / "crash.zarr"
    schema = StoreSchema(keys={"x": KeySpec((2,), "float64")})
    lengths = [3 + (e * 5) % 11 for e in range(30)]
    with StoreWriter(path, schema, durable=False) as writer:
        for e, n in enumerate(lengths):
            writer.begin_episode(source="teleop", task="t")
            writer.append_batch({"x": np.full((n, 2), float(e))})
            writer.commit(success=True)
    rng = random.Random(7)
    claimed_any = False
    for run in range(6):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store.annotate_runner", str(path), str(run)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout.readline().strip() == "start", child.stderr.read()
        if run < 5:
            time.sleep(rng.uniform(0.0, 0.6))
            child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=60)
        assert "Traceback" not in stderr, stderr
        reader = StoreReader(path)
        for ep in reader.episodes:  # committed data intact; the label whole or absent
            np.testing.assert_array_equal(
                reader.read_episode(ep.index, ["x"])["x"],
                np.full((lengths[ep.index], 2), float(ep.index)),
            )
            if KEY in ep.info.keys:
                claimed_any = True
                got = reader.read_episode(ep.index, [KEY])[KEY]
                runs = {int(round((got[0, 0, 0] - ep.index) / 1000))}
                assert len(runs) == 1
                np.testing.assert_array_equal(got, label(ep.index, runs.pop(), lengths[ep.index]))
        for problem in validate(path):  # only leftovers that recovery clears
            assert "interrupted" in problem.message, str(problem)
        recover(path)
        assert validate(path) == []
    assert claimed_any
    assert StoreReader(path).schema.keys[KEY] == SPEC
    assert all(KEY in ep.info.keys for ep in StoreReader(path).episodes)  # last run finished
