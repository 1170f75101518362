"""Human-video capture from two RealSense cameras (librealsense software devices fed at
30 Hz on the station clock), started and stopped with the keyboard on a real pty."""

from __future__ import annotations

import os
import pty
import threading
import time

import numpy as np
import pytest

from data_collection.human_capture import CaptureConfig, HumanCapture, human_video_schema
from data_collection.recorder import camera_calibration
from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.hardware.keyboard import KeyboardTeleop
from robot_learning.hardware.realsense import RealSenseCamera
from robot_learning.keys import camera_key, camera_timestamp_key, depth_key
from robot_learning.store import Source, StoreReader, StoreWriter
from tests.hardware.software_realsense import SoftwareRealSense

W, H = 64, 48
INTR = CameraIntrinsics(width=W, height=H, fx=60.0, fy=60.0, cx=31.5, cy=23.5)
T_FRONT = np.eye(4)
T_SIDE = np.eye(4)
T_SIDE[:3, 3] = [0.45, -1.0, 0.6]


def gray_of(n: int) -> int:
    return 20 + 10 * (n % 20)  # a frame's number, readable through JPEG


class Feeder(threading.Thread):
    """Both rigs get frame n at the same station time, 30 per second."""

    def __init__(self, rigs: list[SoftwareRealSense]) -> None:
        super().__init__(daemon=True)
        self.rigs, self.running = rigs, True

    def run(self) -> None:
        n = 0
        while self.running:
            t_ms = time.time() * 1000.0
            for rig in self.rigs:
                rig.inject(
                    color=np.full((H, W, 3), gray_of(n), np.uint8),
                    depth=np.full((H, W), 800 + n, np.uint16),
                    timestamp_ms=t_ms,
                    frame_number=n,
                )
            n += 1
            time.sleep(1 / 30)


@pytest.fixture
def rig():
    rigs = [
        SoftwareRealSense(serial=s, color_intrinsics=INTR, depth_intrinsics=INTR)
        for s in ("841512070001", "841512070002")
    ]
    feeder = Feeder(rigs)
    cameras = {
        name: RealSenseCamera(name=name, source=r.source(), enable_depth=True, width=W, height=H)
        for name, r in zip(("front", "side"), rigs, strict=True)
    }
    feeder.start()
    for cam in cameras.values():
        cam.connect()
    yield cameras
    feeder.running = False
    feeder.join()
    for cam in cameras.values():
        cam.disconnect()


def test_keys_start_stop_discard_and_the_store_holds_synchronized_episodes(rig, tmp_path):
    master, slave = pty.openpty()
    script = [(0.3, b"b"), (1.0, b"\r"), (0.3, b"b"), (0.4, b"x"), (0.3, b"b"), (0.6, b"\x7f")]

    def operator() -> None:
        for delay, key in script:
            time.sleep(delay)
            os.write(master, key)

    calibration = camera_calibration(
        {n: c.intrinsics for n, c in rig.items()},
        {"front": T_FRONT, "side": T_SIDE},
        source={"fingerprint": "abc123"},
    )
    config = CaptureConfig(task="pour", record_hz=10.0, depth=True, episodes=2)
    schema = human_video_schema(
        {n: c.intrinsics for n, c in rig.items()}, depth=True, record_hz=10.0
    )
    lines: list[str] = []
    threading.Thread(target=operator, daemon=True).start()
    deadline = time.monotonic() + 20
    with StoreWriter(tmp_path / "h.zarr", schema) as writer, KeyboardTeleop(fd=slave) as keys:
        summaries = HumanCapture(
            cameras=rig,
            writer=writer,
            device=keys,
            calibration=calibration,
            config=config,
            report=lines.append,
        ).run(stop=lambda: time.monotonic() > deadline)
    os.close(master)
    os.close(slave)
    assert [s.success for s in summaries] == [True, False]
    assert 7 <= summaries[0].frames <= 12 and 3 <= summaries[1].frames <= 8  # 1.0 s, 0.6 s
    assert any("discarded" in line for line in lines)
    assert any(f"{summaries[0].frames} frames per camera" in line for line in lines)
    reader = StoreReader(tmp_path / "h.zarr")
    assert reader.num_episodes == 2
    for i, summary in enumerate(summaries):
        info = reader.episode(i).info
        assert info.source == Source.HUMAN_VIDEO and info.task == "pour"
        assert info.calibration["side"]["T_base_camera"] == T_SIDE.tolist()
        assert info.calibration["front"]["source"] == {"fingerprint": "abc123"}
        ep = reader.read_episode(i)
        front, side = ep[camera_key("front")], ep[camera_key("side")]
        assert len(front) == summary.frames
        # the same frame number from both cameras in every step, and time moves on
        np.testing.assert_allclose(front.mean(axis=(1, 2, 3)), side.mean(axis=(1, 2, 3)), atol=2)
        np.testing.assert_array_equal(ep[depth_key("front")], ep[depth_key("side")])
        stamps = ep[camera_timestamp_key("front")]
        # 10 Hz steps (a loaded CPU may stretch a few, never repeat or reorder one)
        assert np.all(np.diff(stamps) > 0.05) and 0.08 < np.median(np.diff(stamps)) < 0.15
