"""The sim collection graph over real DDS on loopback, one process per node.

Each node starts exactly as ``ros2 launch``/``rl launch`` starts it (``--ros-args`` command
line, parameter file); the test process joins the graph as one more DDS participant to see
what was published. Graph: sim_node (workcell, camera, robot bridge), teleop_node (scripted
operator), recorder_node (into a store).
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from calibration.calibration_file import CameraCalibration, WorkcellCalibration
from robot_learning.geometry import transform_from_pose
from robot_learning.sim.workcell import Workcell
from robot_learning.store import StoreReader
from robot_learning.store.validate import validate
from ros_nodes import convert, msgs, topics
from ros_nodes.robot_bridge import ACCEPTED_GRIPPER, ACCEPTED_TARGET
from ros_nodes.runtime import SENSOR_DATA
from tests.ros_nodes.graph import wait_for
from tests.ros_nodes.observer import Observer

pytestmark = pytest.mark.slow
SIZE = {"width": 160, "height": 120}
FRONT = topics.CameraTopics("front")


def _observer_of_the_cell() -> Observer:
    obs = Observer()
    obs.collect(
        msgs.CompressedImage,
        FRONT.compressed,
        SENSOR_DATA,
        keep=lambda m: (convert.stamp_s(m), convert.compressed_array(m)),
    )
    obs.collect(
        msgs.PoseStamped,
        ACCEPTED_TARGET,
        keep=lambda m: (convert.stamp_s(m), convert.pose_vector(m)),
    )
    obs.collect(
        msgs.JointState,
        ACCEPTED_GRIPPER,
        keep=lambda m: (convert.stamp_s(m), convert.gripper_closed(m)),
    )
    obs.status(msgs.String, topics.RECORDER_STATUS)
    obs.status(msgs.String, topics.ROBOT_STATUS)
    return obs.start()


def _recorder_status(obs: Observer) -> dict:
    return obs.latest_status.get(topics.RECORDER_STATUS, {})


def _latest_at(samples: list[tuple[float, object]], t: float) -> tuple[float, object] | None:
    before = [s for s in samples if s[0] <= t]
    return max(before, key=lambda s: s[0]) if before else None


def assert_episodes_match_sources(
    store, obs: Observer, episodes: int, wall_start: float, wall_end: float
) -> None:
    """Every stored frame, stamp and action against what the cell published (``obs``)."""
    assert validate(store) == []
    reader = StoreReader(store)
    assert reader.num_episodes == episodes
    frames = obs.snapshot(FRONT.compressed)
    frame_at = dict(frames)
    targets = obs.snapshot(ACCEPTED_TARGET)
    grippers = obs.snapshot(ACCEPTED_GRIPPER)
    previous_end = wall_start
    for index in range(episodes):
        ep = reader.read_episode(index)
        info = reader.episode(index).info
        t = ep["timestamp"]
        assert info.success and info.task == "lift"
        # A step whose frame is late is skipped, never stored misaligned (a loaded machine
        # may delay a frame): steps sit on the 10 Hz episode clock, a few may be missing.
        assert info.notes["skipped_steps"] <= len(t) // 4 and len(t) >= 16
        periods = np.diff(t) / 0.1
        assert np.allclose(periods, np.round(periods)) and periods.min() > 0.99
        # One station clock: wall time, increasing across episodes (sim time never leaks).
        assert previous_end < t[0] and t[-1] < wall_end
        previous_end = t[-1]
        state_t = ep["state_timestamp"]
        assert len(state_t) >= 9 * len(t) and np.all(np.diff(state_t) > 0)
        for k, step_t in enumerate(t):
            frame_t = ep["camera_front_timestamp"][k]
            assert frame_t in frame_at, "every stored frame was published with that stamp"
            assert step_t - 0.15 <= frame_t <= step_t
            newer = [s for s, _ in frames if frame_t < s <= step_t]
            assert not newer, "the newest frame at or before the step was taken"
            diff = np.abs(ep["camera_front"][k].astype(int) - frame_at[frame_t].astype(int))
            assert diff.mean() < 3.0, "the stored image is the published one (JPEG noise)"
            accepted = _latest_at(targets, step_t)
            gripper = _latest_at(grippers, step_t)
            if accepted is not None and accepted[0] >= t[0]:
                np.testing.assert_allclose(ep["action"][k][:7], accepted[1], atol=1e-12)
                assert ep["action"][k][7] == float(gripper is not None and gripper[1])
            else:  # before the first command the arm holds: the action is the measured pose
                np.testing.assert_allclose(ep["action"][k][:7], ep["robot_ee_pose"][k])
        moved = ep["robot_ee_pose"][-1][:3] - ep["robot_ee_pose"][0][:3]
        assert moved[0] > 0.01, "the scripted operator's forward motion reached the arm"
        assert ep["action"][-1][7] == 1.0, "the gripper closed at the end of the script"


def test_three_episodes_through_dds_match_their_sources(graph, tmp_path):
    store = tmp_path / "demos.zarr"
    obs = _observer_of_the_cell()
    wall_start = time.time()
    graph.start("sim_node", "sim", params={"cameras": ["front"], "camera_hz": 15.0, **SIZE})
    graph.start("teleop_node", "teleop", params={"device": "scripted", "episodes": 4})
    graph.start(
        "recorder_node",
        "recorder",
        params={"store": str(store), "cameras": ["front"], "task": "lift", "operator": "ci"},
    )
    try:
        wait_for(
            lambda: _recorder_status(obs).get("committed", 0) >= 3,
            60,
            "3 committed episodes",
            graph,
        )
        # The fourth episode is under way: stopping the recorder now must not commit it.
        wait_for(
            lambda: _recorder_status(obs).get("steps", 0) >= 3,
            10,
            "the 4th episode recording",
            graph,
        )
        assert graph.stop("recorder") == 0
        assert "interrupted" in graph.log("recorder")
        codes = graph.stop_all()
    finally:
        obs.close()
    wall_end = time.time()
    assert all(code == 0 for code in codes.values()), codes

    assert_episodes_match_sources(store, obs, 3, wall_start, wall_end)


def test_camera_killed_mid_episode_ends_it_without_misaligned_frames(graph, tmp_path):
    store = tmp_path / "demos.zarr"
    obs = Observer()
    obs.status(msgs.String, topics.RECORDER_STATUS)
    obs.start()
    graph.start("sim_node", "sim", params={"cameras": ["front"], "camera_hz": 15.0, **SIZE})
    graph.start(
        "camera_node", "side", params={"source": "sim", "sim_camera": "wrist", "fps": 15.0, **SIZE}
    )
    graph.start("teleop_node", "teleop", params={"device": "scripted", "episodes": 3})
    graph.start(
        "recorder_node",
        "recorder",
        params={
            "store": str(store),
            "cameras": ["front", "side"],
            "on_camera_silence": "end",
            "camera_timeout_s": 0.5,
        },
    )
    try:
        wait_for(
            lambda: _recorder_status(obs).get("steps", 0) >= 8, 60, "an episode under way", graph
        )
        graph.stop("side", signal.SIGKILL)
        wait_for(
            lambda: _recorder_status(obs).get("committed", 0) >= 1,
            10,
            "the recorder to end the episode",
            graph,
        )
        # Frames the dead camera sent before the kill can still reach a starved recorder
        # after it was marked silent ("delivers frames again"); it is silent again 0.5 s on.
        wait_for(
            lambda: _recorder_status(obs).get("silent_cameras") == ["side"],
            5,
            "side reported silent",
            graph,
        )
        status = _recorder_status(obs)
        assert status["silent_cameras"] == ["side"]
        assert "/camera/side/color/image_raw/compressed" in status["error"]
        time.sleep(3.5)  # the operator presses START again: refused while side is silent
        assert _recorder_status(obs)["committed"] == 1
        assert "cannot start an episode: no frames on /camera/side" in graph.log("recorder")
        codes = graph.stop_all()
    finally:
        obs.close()
    assert codes["recorder"] == 0
    assert validate(store) == []
    reader = StoreReader(store)
    assert reader.num_episodes == 1
    info = reader.episode(0).info
    assert not info.success and info.notes["interrupted"] == "camera side went silent"
    ep = reader.read_episode(0)
    for cam in ("front", "side"):
        skew = ep["timestamp"] - ep[f"camera_{cam}_timestamp"]
        assert np.all((skew >= 0) & (skew <= 0.15)), f"{cam} frames aligned in every step"


def _publish_targets(pub, pose: np.ndarray, stamp_offset_s: float = 0.0) -> None:
    pub.publish(convert.pose_stamped(pose[:3], pose[3:], time.time() + stamp_offset_s))


def test_second_command_publisher_and_stale_commands_put_the_arm_on_hold(graph):
    obs = Observer("operator")
    obs.collect(msgs.PoseStamped, topics.EE_POSE, keep=convert.pose_vector)
    obs.status(msgs.String, topics.ROBOT_STATUS)
    target_pub = obs.publisher(msgs.PoseStamped, topics.TARGET_POSE)
    obs.start()
    graph.start("franka_node", "franka", params={"robot": "sim", "max_command_age_s": 0.3})
    intruder = None
    try:
        wait_for(lambda: len(obs.snapshot(topics.EE_POSE)) > 10, 30, "the arm's pose", graph)
        home = obs.snapshot(topics.EE_POSE)[-1]
        goal = home + np.r_[0.03, 0.0, 0.0, 0, 0, 0, 0]

        def status() -> dict:
            return obs.latest_status.get(topics.ROBOT_STATUS, {})

        def pose() -> np.ndarray:
            return obs.snapshot(topics.EE_POSE)[-1]

        def command_until(done, timeout_s, what, offset_s=0.0, target=goal) -> None:
            deadline = time.monotonic() + timeout_s
            while not done():
                assert time.monotonic() < deadline, f"timed out waiting for {what}: {status()}"
                _publish_targets(target_pub, target, offset_s)
                time.sleep(0.05)

        command_until(
            lambda: np.linalg.norm(pose()[:3] - goal[:3]) < 0.005,
            10,
            "the arm to follow the one publisher",
        )
        assert status()["state"] == "tracking"
        far = home + np.r_[-0.1, 0.2, 0.1, 0, 0, 0, 0]
        intruder = subprocess.Popen(
            [sys.executable, "-c", INTRUDER, json.dumps(far.tolist())], env=graph.env
        )
        command_until(lambda: status().get("state") == "hold", 20, "the hold")
        assert "/intruder" in status()["error"] and f"pid {intruder.pid}" in status()["error"]
        held = pose()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # both keep publishing; neither is obeyed
            _publish_targets(target_pub, goal)
            time.sleep(0.05)
        assert np.linalg.norm(pose()[:3] - held[:3]) < 0.005, "no command moves a held arm"
        assert np.linalg.norm(pose()[:3] - far[:3]) > 0.1
        intruder.send_signal(signal.SIGTERM)
        assert intruder.wait(10) == 0
        command_until(lambda: status().get("state") == "tracking", 10, "the hold to clear")
        command_until(
            lambda: status().get("state") == "hold", 5, "a stale-command hold", offset_s=-1.0
        )
        assert "stale command" in status()["error"] and "/operator" in status()["error"]
        assert graph.stop("franka") == 0
    finally:
        if intruder is not None and intruder.poll() is None:
            intruder.kill()
        obs.close()


INTRUDER = """
import json, sys, time
from ros_nodes import convert, msgs, topics
from ros_nodes.runtime import create_node
node = create_node("intruder", ["--ros-args", "-r", "__node:=intruder"])
pub = node.create_publisher(msgs.PoseStamped, topics.TARGET_POSE)
far = json.loads(sys.argv[1])
node.create_timer(0.05, lambda: pub.publish(convert.pose_stamped(far[:3], far[3:], time.time())))
node.spin()
node.close()
"""


def test_full_disk_stops_the_recorder_with_a_message_and_a_valid_store(graph, tmp_path, small_disk):
    """A 600 kB filesystem fills up during the first episode: the recorder frees what it
    wrote of it, says what happened and exits with code 3 (no traceback); the store is valid."""
    store = small_disk(0.6) / "demos.zarr"
    graph.start("sim_node", "sim", params={"cameras": ["front"], "camera_hz": 15.0, **SIZE})
    graph.start("teleop_node", "teleop", params={"device": "scripted", "episodes": 3})
    graph.start(
        "recorder_node",
        "recorder",
        params={
            "store": str(store),
            "cameras": ["front"],
            "task": "lift",
            "min_free_mb": 0.0,
            "jpeg_quality": 100,
        },
    )
    deadline = time.monotonic() + 90
    while graph.procs["recorder"].poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    code = graph.stop("recorder")
    log = graph.log("recorder")
    assert code == 3, log[-3000:]
    assert "Traceback" not in log
    assert "full" in log and "rl store recover" in log
    graph.stop_all()
    assert validate(store) == []


def _push_away_report() -> bytes:
    """One 6-axis HID report (id 1): the cap pushed away from the operator at full scale."""
    return struct.pack("<B6h", 1, 0, -350, 0, 0, 0, 0)


def _true_calibration(path) -> WorkcellCalibration:
    """The sim cell's true cameras (sim_node's defaults: lift, seed 0) as a calibration file:
    front fixed (T_base_camera), wrist on the hand (T_hand_camera)."""
    size = (SIZE["height"], SIZE["width"])
    with Workcell(task="lift", seed=0, cameras=("front", "wrist"), image_size=size) as cell:
        cameras = {
            name: CameraCalibration(
                name=name,
                serial="",
                mount=mount,
                intrinsics=cell.cameras[name].intrinsics,
                pose=pose,
            )
            for name, mount, pose in (
                ("front", "fixed", cell.true_T_base_camera("front")),
                ("wrist", "hand", cell.true_T_hand_camera("wrist")),
            )
        }
    calibration = WorkcellCalibration(workcell="sim", cameras=cameras)
    calibration.save(path)
    return calibration


def test_a_spacemouse_without_a_start_button_runs_episodes_from_the_command_topic(graph, tmp_path):
    """The real SpaceMouse code reads a FIFO in place of /dev/hidraw (a pipe is a byte stream,
    not a report stream: reports are written far apart so each read returns whole ones).
    Its default (deployment) button map has no START; the episode starts and ends on
    /recorder/command, which teleop_node follows like the recorder. The recorder records
    the workcell's calibration: a fixed front and a wrist camera on the hand."""
    store, hidraw = tmp_path / "demos.zarr", tmp_path / "hidraw0"
    calibration = _true_calibration(tmp_path / "sim.yaml")
    os.mkfifo(hidraw)
    device = os.open(hidraw, os.O_RDWR | os.O_NONBLOCK)  # a writer stays: no end of stream
    obs = _observer_of_the_cell()
    command = obs.publisher(msgs.String, topics.RECORDER_COMMAND)
    cameras = ["front", "wrist"]
    graph.start("sim_node", "sim", params={"cameras": cameras, "camera_hz": 10.0, **SIZE})
    graph.start("teleop_node", "teleop", params={"device": "spacemouse", "hidraw": str(hidraw)})
    graph.start(
        "recorder_node",
        "recorder",
        params={
            "store": str(store),
            "cameras": cameras,
            "camera_hz": 10.0,
            "calibration": str(tmp_path / "sim.yaml"),
        },
    )
    try:
        wait_for(lambda: _recorder_status(obs).get("ready"), 60, "the recorder ready", graph)
        wait_for(
            lambda: command.subscription_count() >= 3,
            20,
            "teleop, recorder and sim on /recorder/command",
            graph,
        )
        time.sleep(1.0)
        assert obs.snapshot(ACCEPTED_TARGET) == [], "no target before the episode starts"
        started = time.time()
        command.publish(msgs.String(data="start"))
        while time.time() - started < 2.5:  # the operator pushes the cap away
            os.write(device, _push_away_report())
            time.sleep(0.2)
        command.publish(msgs.String(data="success"))
        ended = time.time()
        wait_for(
            lambda: _recorder_status(obs).get("committed", 0) >= 1,
            30,
            "the episode committed",
            graph,
        )
        time.sleep(0.5)
        assert all(code == 0 for code in graph.stop_all().values())
    finally:
        obs.close()
        os.close(device)
    targets = obs.snapshot(ACCEPTED_TARGET)
    assert targets and all(started <= stamp <= ended + 0.1 for stamp, _ in targets), (
        "targets only between the start and the success on the topic"
    )
    assert targets[-1][1][0] - targets[0][1][0] > 0.05, "pushing the cap moved the arm forward"
    ep, info = StoreReader(store).read_episode(0), StoreReader(store).episode(0).info
    assert info.success
    assert ep["action"][-1][0] - ep["action"][0][0] > 0.05, "the recorded actions too"
    # the camera poses, as rl tracks label needs them
    front, wrist = info.calibration["front"], info.calibration["wrist"]
    assert front["mount"] == "fixed" and wrist["mount"] == "hand"
    assert front["source"]["fingerprint"] == calibration.fingerprint()
    np.testing.assert_allclose(front["T_base_camera"], calibration.cameras["front"].pose)
    np.testing.assert_allclose(wrist["T_hand_camera"], calibration.cameras["wrist"].pose)
    assert front["fx"] == calibration.cameras["front"].intrinsics.fx
    hand_at_start = transform_from_pose(ep["robot_ee_pose"][0][:3], ep["robot_ee_pose"][0][3:])
    np.testing.assert_allclose(
        wrist["T_base_camera"], hand_at_start @ calibration.cameras["wrist"].pose, atol=0.01
    )
    poses = info.camera_poses("wrist", ep["robot_ee_pose"])
    assert poses[-1][0, 3] - poses[0][0, 3] > 0.05, "the wrist camera follows the hand"


def test_a_camera_with_another_serial_than_the_calibration_is_refused_at_start(graph, tmp_path):
    """Swapped or replaced cameras: camera_node reports its device's serial (latched
    device_info; a simulated camera reports the stand-in serial it is given) and the
    recorder refuses START while it differs from the calibration's; the right camera
    starts an episode. sim_node's own front camera reports none and is not serial-checked."""
    size = (SIZE["height"], SIZE["width"])
    with Workcell(task="lift", seed=0, cameras=("front", "side"), image_size=size) as cell:
        cameras = {
            name: CameraCalibration(
                name=name,
                serial=serial,
                mount="fixed",
                intrinsics=cell.cameras[name].intrinsics,
                pose=cell.true_T_base_camera(name),
            )
            for name, serial in (("front", "801"), ("side", "111"))
        }
    WorkcellCalibration(workcell="sim", cameras=cameras).save(tmp_path / "sim.yaml")
    obs = Observer()
    obs.status(msgs.String, topics.RECORDER_STATUS)
    obs.start()
    command = obs.publisher(msgs.String, topics.RECORDER_COMMAND)
    side = {"source": "sim", "sim_camera": "side", "fps": 10.0, **SIZE}
    graph.start("sim_node", "sim", params={"cameras": ["front"], "camera_hz": 10.0, **SIZE})
    graph.start("camera_node", "side", params={**side, "serial_no": "_222"})
    graph.start(
        "recorder_node",
        "recorder",
        params={
            "store": str(tmp_path / "demos.zarr"),
            "cameras": ["front", "side"],
            "camera_hz": 10.0,
            "calibration": str(tmp_path / "sim.yaml"),
        },
    )
    try:
        wait_for(lambda: _recorder_status(obs).get("ready"), 60, "the recorder ready", graph)
        wait_for(lambda: command.subscription_count() >= 2, 20, "recorder on the topic", graph)
        command.publish(msgs.String(data="start"))
        wait_for(
            lambda: "serial" in (_recorder_status(obs).get("error") or ""),
            10,
            "START refused",
            graph,
        )
        error = _recorder_status(obs)["error"]
        assert "camera side is serial 222 but the calibration is for 111" in error
        assert "front" not in error, "a camera that reports no serial is not checked"
        assert _recorder_status(obs).get("episode") is None
        graph.stop("side")
        graph.start("camera_node", "side", params={**side, "serial_no": "_111"})
        deadline = time.time() + 30  # START again until the new latched serial has arrived
        while _recorder_status(obs).get("episode") is None and time.time() < deadline:
            command.publish(msgs.String(data="start"))
            time.sleep(1.0)
        assert _recorder_status(obs).get("episode") is not None, graph.log("recorder")[-2000:]
        command.publish(msgs.String(data="discard"))
        time.sleep(0.5)
        assert all(code == 0 for code in graph.stop_all().values())
    finally:
        obs.close()
