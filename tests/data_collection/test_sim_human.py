"""``rl sim collect --embodiment hand``: human_video episodes of the hand stand-in, filmed
by the fixed cameras, with landmark ground truth that lands on the hand in the images."""

from __future__ import annotations

import numpy as np
import pytest

from data_collection.motion_tracks.cameras import EpisodeCamera
from robot_learning.keys import HAND_LANDMARKS_3D, HANDS, camera_key
from robot_learning.sim.tasks.lift import OBJECT_REGIONS_Y_M
from robot_learning.sim.tasks.push import TARGET_REGIONS_Y_M
from robot_learning.store import Source, StoreReader
from robot_learning.store.validate import validate
from tests.data_collection.sim_cli import sim_collect


@pytest.fixture(scope="module")
def human_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("human") / "human.zarr"
    for task, seed in (("lift", 0), ("push", 10)):
        options = ("--task", task, "--episodes", "2", "--seed", str(seed), "--size", "120x160")
        assert sim_collect(store, *options, hand=True) == 0
    return store


def test_hand_episodes_are_human_videos_with_calibrated_fixed_views(human_store):
    assert validate(human_store) == []
    reader = StoreReader(human_store)
    assert reader.select(source=Source.HUMAN_VIDEO) == [0, 1, 2, 3]
    assert reader.select(success=True) == [0, 1, 2, 3]  # the hand lifts and pushes the cube
    for ep in reader.episodes:
        assert sorted(ep.info.calibration) == ["front", "side"]
        assert ep.info.calibration["front"]["T_base_camera"] is not None
        assert ep.info.notes["embodiment"] == "hand"
    data = reader.read_episode(0)
    assert data[camera_key("front")].shape[1:] == (120, 160, 3)
    landmarks = data[HAND_LANDMARKS_3D]
    assert np.isnan(landmarks[:, HANDS.index("left")]).all()
    right = landmarks[:, HANDS.index("right")]
    assert np.isfinite(right).all()
    assert right[:, 8, 2].min() < 0.04 and right[-1, 8, 2] > 0.15  # down to the cube, up


def test_landmark_ground_truth_projects_onto_the_skin_coloured_hand(human_store):
    reader = StoreReader(human_store)
    hits = total = 0
    for index in (0, 2):
        info = reader.episode(index).info
        data = reader.read_episode(index)
        right = data[HAND_LANDMARKS_3D][:, HANDS.index("right")]
        for name in ("front", "side"):
            camera = EpisodeCamera.from_episode(info, name, steps=len(right))
            pixels, depth = camera.project(right[:, [5, 8]])  # index knuckle and tip
            frames = data[camera_key(name)]
            for t in range(0, len(frames), 3):
                for u, v in pixels[t]:
                    if not (0 <= u < 160 and 0 <= v < 120):
                        continue
                    r, g, b = frames[t, int(round(v)), int(round(u))].astype(int)
                    total += 1
                    hits += r > g > b and r - b > 40  # skin, not red cube / wood / grey
    assert total > 20
    assert hits / total > 0.8, (hits, total)


@pytest.mark.parametrize(
    ("task", "option", "regions", "y_of"),
    [
        ("push", "targets", TARGET_REGIONS_Y_M, lambda task: task.target_xy[1]),
        ("lift", "objects", OBJECT_REGIONS_Y_M, lambda task: task.cube.position[1]),
    ],
)
def test_novel_regions_lie_where_robot_regions_never_do(task, option, regions, y_of):
    from robot_learning.sim.workcell import Workcell

    ys = {}
    for region in ("robot", "novel"):
        with Workcell(task=task, cameras=("front",), task_options={option: region}) as w:
            ys[region] = [float(y_of(w.task)) for s in range(15) if w.reset(s)]
    low, high = regions["novel"]
    assert all(low <= y <= high for y in ys["novel"])
    assert max(ys["robot"]) < low - 0.05


def test_the_hand_starts_where_the_robot_gripper_starts():
    from robot_learning.sim.hand_demos import HAND_START_M, LiftDemonstrator
    from robot_learning.sim.workcell import Workcell

    with Workcell(task="lift", cameras=("front",)) as w:
        w.reset(0)
        home_tcp = w.robot.tcp_pose()[0]
    assert np.linalg.norm(HAND_START_M - home_tcp) < 0.02
    with Workcell(task="lift", cameras=("front",), human_hand=True) as w:
        w.reset(0)
        starts = [
            LiftDemonstrator(workcell=w, rng=np.random.default_rng(s), noise_m_s=0.0).position
            for s in range(20)
        ]
    assert np.all(np.linalg.norm(np.array(starts) - home_tcp, axis=1) < 0.15)


def test_bad_hand_collections_are_refused(tmp_path, capsys):
    store = tmp_path / "x.zarr"
    assert sim_collect(store, "--cameras", "front", "wrist", "--episodes", "1", hand=True) == 2
    assert "fixed cameras" in capsys.readouterr().err
    assert sim_collect(store, "--task", "stack", "--episodes", "1", hand=True) == 2
    assert "no hand demonstrator for task 'stack'" in capsys.readouterr().err
    options = ("--task", "push", "--task-option", "targets=moon", "--episodes", "1")
    assert sim_collect(store, *options) == 2
    assert "targets='moon'" in capsys.readouterr().err
    options = ("--task", "lift", "--task-option", "objects=sky", "--episodes", "1")
    assert sim_collect(store, *options) == 2
    assert "objects='sky'" in capsys.readouterr().err
