"""``rl sim collect`` writes a valid store with everything a training run needs."""

from __future__ import annotations

import numpy as np

from data_collection import recorder as keys
from robot_learning.store import StoreReader
from robot_learning.store.validate import validate
from tests.rl_cli import run_rl


def test_collect_records_every_camera_state_action_and_success(tmp_path):
    store = tmp_path / "demos.zarr"
    result = run_rl(
        *("sim", "collect", "--task", "lift", "--episodes", "3", "--store", str(store)),
        *("--seed", "5"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "3/3 successful" in result.stdout
    assert "collect lift" in result.stderr  # the progress bar
    assert validate(store) == []
    reader = StoreReader(store)
    assert reader.num_episodes == 3 and reader.select(success=True) == [0, 1, 2]
    ep = reader.episode(1)
    assert ep.info.source == "teleop" and ep.info.task == "lift"
    assert ep.info.notes["seed"] == 6
    data = reader.read_episode(1)
    n = ep.length
    assert n > 20
    for camera in ("front", "wrist"):
        frames = data[keys.camera_key(camera)]
        assert frames.shape == (n, 240, 320, 3)
        assert frames[0].std() > 10  # a rendered scene, not a blank frame
        assert np.abs(frames[-1].astype(int) - frames[0]).mean() > 1  # the scene changed
        np.testing.assert_allclose(data[keys.camera_timestamp_key(camera)], data[keys.TIMESTAMP])
        calib = ep.info.calibration[camera]
        assert (calib["width"], calib["height"]) == (320, 240)
        assert np.allclose(np.asarray(calib["T_base_camera"])[3], [0, 0, 0, 1])
    # The wrist camera follows the hand: its pose per step from the hand pose and T_hand_camera.
    wrist = ep.info.calibration["wrist"]
    assert wrist["mount"] == "hand" and wrist["source"]["kind"] == "simulator ground truth"
    poses = ep.info.camera_poses("wrist", data[keys.EE_POSE])
    np.testing.assert_allclose(poses[0], wrist["T_base_camera"], atol=1e-6)  # at reset
    assert np.linalg.norm(poses[-1][:3, 3] - poses[0][:3, 3]) > 0.05  # it moved with the hand
    front = ep.info.camera_poses("front", data[keys.EE_POSE])
    np.testing.assert_allclose(front[-1], ep.info.calibration["front"]["T_base_camera"])
    # 10 Hz steps, 100 Hz state: each step's action is the target sent at that control tick.
    np.testing.assert_allclose(np.diff(data[keys.TIMESTAMP]), 0.1, atol=1e-9)
    state_rows = data[keys.STATE_TARGET]
    assert len(state_rows) == ep.info.lengths["state"] and len(state_rows) > 9 * (n - 1)
    np.testing.assert_allclose(data[keys.ACTION], state_rows[::10][:n])
    # The gripper closed during a lift and the cube went up with the hand.
    assert data[keys.ACTION][:, 7].max() == 1.0
    assert data[keys.EE_POSE][-1, 2] > data[keys.EE_POSE][:, 2].min() + 0.05


def test_collect_appends_and_rejects_unknown_task(tmp_path):
    from data_collection.sim_collect import CollectConfig, collect

    store = tmp_path / "demos.zarr"
    collect(CollectConfig(task="push", episodes=1, store=store, seed=1), progress=False)
    collect(CollectConfig(task="push", episodes=1, store=store, seed=2), progress=False)
    assert StoreReader(store).num_episodes == 2
    result = run_rl(
        *(
            "sim",
            "collect",
            "--task",
            "pour",
            "--episodes",
            "1",
            "--store",
            str(tmp_path / "x.zarr"),
        ),
        timeout=120,
    )
    assert result.returncode == 2 and "known tasks: empty, lift, push, stack" in result.stderr


def test_reflex_mid_episode_drops_that_episode_and_keeps_the_rest(tmp_path):
    from data_collection.sim_collect import CollectConfig, collect

    store = tmp_path / "demos.zarr"
    first = collect(CollectConfig(task="lift", episodes=1, store=store, seed=1), progress=False)
    assert first.episodes == 1 and first.reflexes == 0
    # A reflex threshold below grasping forces: every episode stops the arm mid-way.
    touchy = collect(
        CollectConfig(task="lift", episodes=2, store=store, seed=2, reflex_force_n=5.0),
        progress=False,
    )
    assert touchy.reflexes == 2 and touchy.episodes == 0
    reader = StoreReader(store)
    assert reader.num_episodes == 1 and reader.episode(0).info.notes["seed"] == 1
    assert validate(store) == []
