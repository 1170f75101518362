"""Motion tracks against simulator ground truth: robot track pixels vs MuJoCo's finger
bodies, hand tracks vs landmark ground truth, the labelling round trip and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from data_collection.hand_tracking.base import PointState
from data_collection.hand_tracking.sim_tracker import simulate_tracking
from data_collection.motion_tracks import human
from data_collection.motion_tracks.cameras import EpisodeCamera
from data_collection.motion_tracks.robot import gripper_points
from data_collection.recorder import camera_calibration
from robot_learning import keys
from robot_learning.cli import main
from robot_learning.store import EpisodeInfo, Source, StoreReader
from robot_learning.store.sampler import SequenceDataset
from robot_learning.store.validate import validate
from robot_learning.track_geometry import FINGERTIP_FROM_ROOT_M
from tests.data_collection.sim_cli import sim_collect

SIZE = "96x128"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("tracks") / "mixed.zarr"
    robot = ("--task", "lift", "--episodes", "1", "--cameras", "front", "side", "--size", SIZE)
    assert sim_collect(path, *robot) == 0
    for task in ("lift", "push"):
        hand = ("--task", task, "--episodes", "1", "--size", SIZE, "--seed", "4")
        assert sim_collect(path, *hand, hand=True) == 0
    return path


def test_robot_track_points_match_mujoco_fingers_to_a_subpixel(tmp_path):
    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.workcell import Workcell

    samples = []
    with Workcell(task="lift", cameras=("front", "side"), image_size=(240, 320)) as w:
        cameras = w.cameras
        calibration = camera_calibration(
            {n: c.intrinsics for n, c in cameras.items()},
            {n: c.extrinsics for n, c in cameras.items()},
        )

        def on_step(step, state, command, target):
            if step % 40:
                return
            current = w.robot.read_state()
            truth = []
            for finger in ("left_finger", "right_finger"):
                body = w.data.body(finger)
                truth.append(body.xpos + body.xmat.reshape(3, 3) @ [0, 0, FINGERTIP_FROM_ROOT_M])
            hand = w.data.body("hand")
            truth.append(hand.xpos + hand.xmat.reshape(3, 3) @ [0, 0, 0.0584])
            samples.append((current.ee_pose_vector(), current.gripper_width_m, truth))

        run_episode(w, seed=3, on_step=on_step)
    poses = np.array([s[0] for s in samples])
    widths = np.array([s[1] for s in samples])
    truth = np.array([s[2] for s in samples])
    assert widths.min() < 0.06 < widths.max()  # open and closed on the cube both covered
    points = gripper_points(poses, widths)
    np.testing.assert_allclose(points, truth, atol=2e-4)  # left pad, right pad, root centre
    info = EpisodeInfo(
        index=0, source=Source.TELEOP, task="lift", success=True, calibration=calibration
    )
    for name in ("front", "side"):
        camera = EpisodeCamera.from_episode(info, name, steps=len(points))
        ours, _ = camera.project(points)
        theirs, _ = camera.project(truth)
        assert np.abs(ours - theirs).max() < 0.5, name


def test_labelling_round_trip_with_perfect_tracker(store, capsys):
    assert main(["tracks", "label", "--store", str(store), "--perfect"]) == 0
    out = capsys.readouterr().out
    assert "labelled 1 robot and 2 human episodes" in out
    assert "mean 0.00 px" in out
    assert validate(store) == []
    reader = StoreReader(store)
    robot_ep = reader.episode(0)
    data = reader.read_episode(0)
    np.testing.assert_array_equal(data[keys.TRACK_GRASP], data[keys.ACTION][:, 7] > 0.5)
    assert data[keys.TRACK_GRASP][0] == 0 and data[keys.TRACK_GRASP][-1] == 1
    assert (data[keys.track_state_key("front")] == PointState.DETECTED).all()
    assert keys.hand_keypoints_key("front") not in robot_ep.info.keys
    for index in (1, 2):
        ep = reader.episode(index)
        data = reader.read_episode(index)
        truth = data[keys.HAND_LANDMARKS_3D][:, 0]
        for name in ("front", "side"):
            camera = EpisodeCamera.from_episode(ep.info, name, steps=ep.length)
            expected, _ = camera.project(truth[:, list(human.TRACK_LANDMARKS)])
            # the hand starts where the gripper does, at the top edge of a view: a perfect
            # tracker misses it exactly while less than half of it is inside the image
            pixels, depth = camera.project(truth)
            in_view = camera.inside(pixels, depth).mean(axis=1) >= 0.5
            seen = data[keys.hand_state_key(name)][:, 0] == PointState.DETECTED
            np.testing.assert_array_equal(seen, in_view)
            assert in_view.mean() > 0.9, in_view.mean()
            np.testing.assert_allclose(data[keys.track_key(name)][seen], expected[seen], atol=1e-3)
            assert (data[keys.hand_state_key(name)][:, 1] == PointState.MISSING).all()
        np.testing.assert_allclose(data[keys.TRACK_POINTS_3D], truth[:, [4, 8, 5]], atol=1e-6)
        terminal = data[keys.TRACK_TERMINAL]
        assert terminal[-1] == 1 and terminal[0] == 0 and terminal.sum() <= 6
    lift = reader.read_episode(1)[keys.TRACK_GRASP]
    assert lift[0] == 0 and lift[-1] == 1 and np.count_nonzero(np.diff(lift)) == 1
    push = reader.read_episode(2)[keys.TRACK_GRASP]
    assert push[-1] == 1  # pinched shut as a paddle
    ds = SequenceDataset(
        store,
        obs_keys=[keys.track_key("front"), keys.TRACK_GRASP],
        action_keys=[keys.TRACK_POINTS_3D],
        obs_horizon=1,
        action_horizon=4,
        select={"source": "human_video"},
    )
    assert len(ds) == reader.episode(1).length + reader.episode(2).length
    # labelled already: refused without --overwrite, replaced with it
    assert main(["tracks", "label", "--store", str(store)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["tracks", "label", "--store", str(store), "--overwrite"]) == 0
    out = capsys.readouterr().out
    mean_px = float(out.split("mean ")[1].split(" px")[0])
    assert 0.5 < mean_px < 8.0  # the default error model, at 96x128
    assert validate(store) == []


def test_simulated_tracker_errors_have_their_documented_sizes(store):
    reader = StoreReader(store)
    ep = reader.episode(1)
    truth = reader.read_episode(1)[keys.HAND_LANDMARKS_3D].astype(np.float64)
    truth = np.repeat(truth, 40, axis=0)  # a long episode for the statistics
    timestamps = np.arange(len(truth)) / 10.0
    camera = EpisodeCamera.from_episode(ep.info, "front", steps=len(truth))
    seq = simulate_tracking(truth, camera, timestamps, max_gap_s=0.0, rng=np.random.default_rng(1))
    pixels, _ = camera.project(truth[:, 0])
    detected = seq.state[:, 0] == PointState.DETECTED
    palm = np.linalg.norm(pixels[:, 9] - pixels[:, 0], axis=-1)
    error = np.linalg.norm(seq.keypoints[detected, 0] - pixels[detected], axis=-1)
    relative = (error / palm[detected, None]).mean()
    assert 0.08 < relative < 0.12  # mean 2D error ~10% of the palm (module doc)
    lost = 1 - detected.mean() - (seq.state[:, 1] == PointState.DETECTED).mean()
    assert 0.03 < lost < 0.09  # dropouts ~6% (swaps put ~1% in the left slot)
    swapped = (seq.state[:, 1] == PointState.DETECTED).mean()
    assert 0.003 < swapped < 0.02


def test_bad_inputs_name_episode_and_camera(store, tmp_path, capsys):
    assert main(["tracks", "label", "--store", str(store), "--cameras", "wrist"]) == 2
    err = capsys.readouterr().err
    assert "episode 0 (teleop): view(s) ['wrist'] missing" in err
    # an episode recorded with an uncalibrated camera
    broken = tmp_path / "uncalibrated.zarr"
    assert sim_collect(broken, "--episodes", "1", "--size", SIZE, hand=True) == 0
    info_array = zarr.open_array(broken / "meta" / "episode_info", mode="r+")
    info = json.loads(str(info_array[0]))
    info["calibration"]["side"]["T_base_camera"] = None
    info_array[0] = json.dumps(info, sort_keys=True)
    assert main(["tracks", "label", "--store", str(broken)]) == 2
    assert "episode 0, camera 'side': recorded uncalibrated" in capsys.readouterr().err
    assert "track_front" not in StoreReader(broken).schema.keys  # nothing written


def test_hands_lost_for_long_stretches_are_flagged_and_excluded(tmp_path, capsys):
    path = tmp_path / "lossy.zarr"
    options = ("--episodes", "1", "--size", SIZE, "--task", "push", "--seed", "2")
    assert sim_collect(path, *options, hand=True) == 0
    assert main(["tracks", "label", "--store", str(path), "--dropout", "0.6"]) == 0
    out = capsys.readouterr().out
    assert "episode 0 flagged: right hand not found in view" in out
    ep = StoreReader(path).episode(0)
    assert ep.excluded and ep.curation.reason.startswith("tracks: right hand not found")
    assert keys.track_key("front") in ep.info.keys  # labelled all the same


def test_human_episode_without_ground_truth_or_images_is_refused(tmp_path, capsys):
    from robot_learning.store import Codec, KeySpec, StoreSchema, StoreWriter

    path = tmp_path / "plain.zarr"
    calibration = {
        "front": {
            "width": 64,
            "height": 48,
            "fx": 50.0,
            "fy": 50.0,
            "cx": 32.0,
            "cy": 24.0,
            "distortion": [0.0] * 5,
            "T_base_camera": np.eye(4).tolist(),
            "T_hand_camera": None,
        }
    }
    schema = StoreSchema(
        keys={
            keys.TIMESTAMP: KeySpec((), "float64"),
            keys.camera_key("front"): KeySpec((48, 64, 3), "uint8", Codec.JPEG),
        }
    )
    with StoreWriter(path, schema) as writer:
        writer.begin_episode(source="human_video", task="lift", calibration=calibration)
        writer.append_batch(
            {
                keys.TIMESTAMP: np.arange(5) / 10.0,
                keys.camera_key("front"): np.full((5, 48, 64, 3), 90, np.uint8),
            }
        )
        writer.commit(success=True)
        writer.begin_episode(source="teleop", task="lift", calibration=calibration)
        writer.append_batch(
            {
                keys.TIMESTAMP: np.arange(5) / 10.0,
                keys.camera_key("front"): np.full((5, 48, 64, 3), 90, np.uint8),
            }
        )
        writer.commit(success=True)
    assert main(["tracks", "label", "--store", str(path), "--episodes", "0"]) == 2
    assert (
        "episode 0 (human_video): lacks ['hand_landmarks_3d'] (the sim tracker needs "
        "simulator ground truth" in capsys.readouterr().err
    )
    assert main(["tracks", "label", "--store", str(path), "--episodes", "1"]) == 2
    assert "episode 1 (teleop): lacks ['robot_ee_pose'" in capsys.readouterr().err
    one_view = tmp_path / "one_view.zarr"
    two_cameras = {**calibration, "side": calibration["front"]}
    with StoreWriter(one_view, schema) as writer:
        writer.begin_episode(source="human_video", task="lift", calibration=two_cameras)
        writer.append_batch(
            {
                keys.TIMESTAMP: np.arange(5) / 10.0,
                keys.camera_key("front"): np.full((5, 48, 64, 3), 90, np.uint8),
            }
        )
        writer.commit(success=True)
    assert main(["tracks", "label", "--store", str(one_view)]) == 2
    assert "episode 0 (human_video): view(s) ['side'] missing" in capsys.readouterr().err
    no_images = tmp_path / "no_images.zarr"
    with StoreWriter(
        no_images, StoreSchema(keys={keys.TIMESTAMP: KeySpec((), "float64")})
    ) as writer:
        writer.begin_episode(source="human_video", task="lift", calibration=calibration)
        writer.append_batch({keys.TIMESTAMP: np.arange(5) / 10.0})
        writer.commit(success=True)
    assert main(["tracks", "label", "--store", str(no_images)]) == 2
    assert "episode 0 (human_video) records no camera images" in capsys.readouterr().err
