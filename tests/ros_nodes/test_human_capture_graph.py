"""The human-capture graph as a user starts it: ``rl launch launch/human_capture_sim.yaml``,
one process per node over loopback DDS, with a calibration file.

sim_node renders the front and side cameras, color and aligned depth, at 30 Hz (both views
of one physics instant carry one stamp), the scripted operator presses START/SUCCESS on
``/spacenav/joy`` three times and moves the arm (what changes in view), and the test
discards the second episode on ``/recorder/command``. The test process listens to every
published frame and press, so the store is checked against what was actually on the wire.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from calibration.calibration_file import CameraCalibration, WorkcellCalibration
from robot_learning.keys import camera_key, camera_timestamp_key, depth_key
from robot_learning.sim.workcell import Workcell
from robot_learning.store import Source, StoreReader
from robot_learning.store.validate import validate
from ros_nodes import convert, msgs, topics
from ros_nodes.runtime import SENSOR_DATA
from ros_nodes.topics import JoyButton
from tests.ros_nodes.graph import graph_env, wait_for
from tests.ros_nodes.observer import Observer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CAMERAS = ("front", "side")
SIZE = (120, 160)  # height, width
CAMERA_HZ = 30.0


def sim_calibration(path: Path) -> WorkcellCalibration:
    """The sim cameras' true intrinsics and poses (scene seed 0), as a calibration file."""
    with Workcell(task="lift", seed=0, cameras=CAMERAS, image_size=SIZE) as cell:
        cameras = {
            name: CameraCalibration(
                name=name,
                serial="",
                mount="fixed",
                intrinsics=cell.cameras[name].intrinsics,
                pose=cell.true_T_base_camera(name),
            )
            for name in CAMERAS
        }
    calibration = WorkcellCalibration(workcell="sim", cameras=cameras)
    calibration.save(path)
    return calibration


def _observer() -> Observer:
    obs = Observer("operator")
    for name in CAMERAS:
        obs.collect(
            msgs.CompressedImage,
            topics.CameraTopics(name).compressed,
            SENSOR_DATA,
            keep=lambda m: (convert.stamp_s(m), bytes(m.data)),
        )
        obs.collect(
            msgs.Image,
            topics.CameraTopics(name).aligned_depth,
            SENSOR_DATA,
            keep=lambda m: (convert.stamp_s(m), convert.image_array(m)),
        )
    obs.collect(msgs.Joy, topics.JOY, keep=lambda m: (convert.stamp_s(m), list(m.buttons)))
    obs.status(msgs.String, topics.RECORDER_STATUS)
    return obs


def _presses(joy: list[tuple[float, list[int]]], button: int) -> list[float]:
    return [stamp for stamp, buttons in joy if buttons[button]]


def _image(jpeg: bytes) -> np.ndarray:
    return convert.compressed_array(msgs.CompressedImage(format="jpeg", data=jpeg))


def test_two_views_paired_by_stamp_into_human_video_episodes_and_a_discard_leaves_nothing(
    tmp_path, monkeypatch
):
    env = graph_env()
    for key in ("ROS_DOMAIN_ID", "CYCLONEDDS_URI", "ROS_NODES_BACKEND"):
        monkeypatch.setenv(key, env[key])
    calibration = sim_calibration(tmp_path / "sim.yaml")
    store = tmp_path / "human.zarr"
    obs = _observer()
    command = obs.publisher(msgs.String, topics.RECORDER_COMMAND)
    obs.start()

    def status() -> dict:
        return obs.latest_status.get(topics.RECORDER_STATUS, {})

    log = open(tmp_path / "launch.log", "wb")  # noqa: SIM115
    launch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "launch",
            "launch/human_capture_sim.yaml",
            f"store:={store}",
            "episodes:=3",
            f"height:={SIZE[0]}",
            f"width:={SIZE[1]}",
            f"camera_hz:={CAMERA_HZ}",
            "depth:=true",
            "uncalibrated:=false",
            f"calibration:={tmp_path / 'sim.yaml'}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: status().get("committed", 0) >= 1, 90, "the first episode")
        wait_for(lambda: command.subscription_count() > 0, 10, "/recorder/command matched")
        wait_for(
            lambda: status().get("state") == "recording" and status()["steps"] >= 15,
            20,
            "the second episode under way",
        )
        command.publish(msgs.String(data="discard"))
        discarded_s = time.time()
        wait_for(lambda: status().get("discarded", 0) == 1, 10, "the discard")
        wait_for(lambda: status().get("committed", 0) >= 2, 30, "the third episode")
        final = status()
        launch.send_signal(signal.SIGINT)  # Ctrl-C: every node shuts down cleanly
        assert launch.wait(timeout=60) == 0, (tmp_path / "launch.log").read_text()[-3000:]
    finally:
        obs.close()
        if launch.poll() is None:
            launch.kill()
            launch.wait()

    assert validate(store) == []
    reader = StoreReader(store)
    assert reader.num_episodes == 2, "the discarded episode left no episode"
    assert reader.array("timestamp").shape[0] == reader.num_steps, "nor any row"
    published = {name: dict(obs.snapshot(topics.CameraTopics(name).compressed)) for name in CAMERAS}
    depths = {name: dict(obs.snapshot(topics.CameraTopics(name).aligned_depth)) for name in CAMERAS}
    joy = obs.snapshot(topics.JOY)
    starts, ends = _presses(joy, JoyButton.START), _presses(joy, JoyButton.SUCCESS)
    assert len(starts) == 3 and len(ends) >= 2
    windows = [(starts[0], ends[0]), (starts[2], ends[2] if len(ends) > 2 else np.inf)]
    figures, checked_depth = [], 0
    for index, (start_s, end_s) in enumerate(windows):
        info = reader.episode(index).info
        assert info.source == Source.HUMAN_VIDEO and info.success
        for name in CAMERAS:  # the calibration it was recorded with, as rl human collect does
            recorded = info.calibration[name]
            np.testing.assert_allclose(
                recorded["T_base_camera"], calibration.cameras[name].pose, atol=1e-12
            )
            assert recorded["source"]["fingerprint"] == calibration.fingerprint()
        ep = reader.read_episode(index)
        stamps = {name: ep[camera_timestamp_key(name)] for name in CAMERAS}
        # both views of every step come from one instant: the stamp both were published with
        np.testing.assert_array_equal(stamps["front"], stamps["side"])
        t = stamps["front"]
        assert np.all(np.diff(t) > 0), "no frame stored twice"
        assert start_s <= t[0] and t[-1] <= end_s, "only frames between START and SUCCESS"
        for name in CAMERAS:
            for k in range(0, len(t), 5):
                sent = _image(published[name][t[k]])
                diff = np.abs(ep[camera_key(name)][k].astype(int) - sent.astype(int))
                assert diff.mean() < 3.0, f"{name} step {k}: the stored view is the one sent"
                if t[k] in depths[name]:  # (the test's own reader may miss a best-effort one)
                    np.testing.assert_array_equal(ep[depth_key(name)][k], depths[name][t[k]])
                    checked_depth += 1
        first, last = (_image(published["front"][t[i]]).astype(int) for i in (0, -1))
        assert np.mean(np.abs(first - last) > 20) > 0.002, "the scene moved during the episode"
        # frame counts: every front frame sent between the presses became a step
        sent_in_window = sum(start_s <= s <= end_s for s in published["front"])
        recorded, skipped = len(t), info.notes["skipped_steps"]
        assert recorded >= 0.9 * sent_in_window and recorded + skipped <= sent_in_window
        assert recorded >= 10  # (how many the simulator renders in 2 s depends on its load)
        figures.append(
            f"episode {index}: {recorded} steps x 2 views of {sent_in_window} "
            f"frames sent per camera in {t[-1] - t[0]:.2f} s, {skipped} skipped, "
            f"dropped {info.notes['dropped_frames']}"
        )
    assert checked_depth > 20, "depth of the same instant, stored losslessly"
    discarded = [s for s in published["front"] if starts[1] <= s <= discarded_s]
    assert len(discarded) > 15
    stored = np.concatenate([reader.read_episode(i)["timestamp"] for i in range(2)])
    assert not np.any((stored >= starts[1]) & (stored <= discarded_s))
    assert final["frames_per_episode"] == [reader.episode(i).length for i in range(2)]
    print("\n".join(figures))


def test_a_missing_or_doubtful_calibration_stops_the_node_at_startup(graph, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    graph.start(
        "human_capture_node",
        "human_capture",
        params={"store": str(tmp_path / "h.zarr"), "calibration": str(missing)},
    )
    assert graph.procs["human_capture"].wait(30) == 2
    assert str(missing) in graph.log("human_capture")
    with Workcell(task="lift", seed=0, cameras=("wrist",), image_size=SIZE) as cell:
        wrist = CameraCalibration(
            name="side",
            serial="",
            mount="hand",
            intrinsics=cell.cameras["wrist"].intrinsics,
            pose=cell.true_T_hand_camera("wrist"),
        )
    path = WorkcellCalibration(workcell="lab", cameras={"side": wrist}).save(tmp_path / "l.yaml")
    graph.start(
        "human_capture_node",
        "second",
        params={"store": str(tmp_path / "h.zarr"), "calibration": str(path)},
    )
    assert graph.procs["second"].wait(30) == 2
    log = graph.log("second")
    assert "camera 'front' is not calibrated" in log and "['side'] are on the robot's hand" in log
    assert "uncalibrated:=true" in log and not (tmp_path / "h.zarr").exists()
