"""human_capture_node's step assembly when frames reach it late (a loaded machine).

The node is real (a DDS participant on a fresh domain, its store on disk); its inputs are
handed to the callbacks its subscriptions call, in the order a lagging node dispatches them:
the reference camera's frames, then the other camera's of the same instants well after the
former, the end press before the last frames. Real time passes between the dispatches, as
when the node's process is starved, so every frame is older than a fixed wall-clock delay
by the time the node sees it. Every frame stamped between START and SUCCESS must become a
step all the same.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.store import StoreReader
from ros_nodes import convert, msgs
from ros_nodes.human_capture_node import HumanCaptureNode
from ros_nodes.runtime import create_node
from ros_nodes.topics import JoyButton

INTR = CameraIntrinsics(width=32, height=24, fx=30.0, fy=30.0, cx=16.0, cy=12.0)
PERIOD_S = 1 / 30


@pytest.fixture
def capture(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "230")
    node = create_node(
        "human_capture",
        [
            "--ros-args",
            "-p",
            f"store:={tmp_path / 'human.zarr'}",
            "-p",
            "uncalibrated:=true",
            "-p",
            "max_frame_wait_s:=0.8",
        ],
    )
    cap = HumanCaptureNode(node)
    for name, stream in cap.streams.streams.items():
        cap.streams._on_info(stream, convert.camera_info(INTR, time.time(), name))
        cap.streams._on_device_info(stream, msgs.String(data='{"serial": "", "source": "test"}'))
    yield cap
    node.close()


def _frame(cap: HumanCaptureNode, name: str, stamp: float) -> None:
    color = np.full((INTR.height, INTR.width, 3), int(stamp * 1000) % 200, np.uint8)
    cap.streams._on_frame(
        cap.streams.streams[name],
        convert.compressed_image(color, stamp, f"{name}_color_optical_frame"),
    )


def _press(cap: HumanCaptureNode, button: int, stamp: float) -> None:
    for held in (button, None):  # press, then release
        buttons = [0] * JoyButton.COUNT
        if held is not None:
            buttons[held] = 1
        cap.commands.on_joy(msgs.Joy(header=convert.header(stamp, ""), axes=[], buttons=buttons))


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def test_late_frames_of_the_other_camera_and_after_the_end_press_still_become_steps(capture):
    t0 = time.time()
    stamps = t0 + 0.01 + PERIOD_S * np.arange(10)
    _press(capture, JoyButton.START, t0)
    _sleep_until(stamps[-1] + 0.3)  # the node was starved: all ten instants are 0.3 s old
    for s in stamps:
        _frame(capture, "front", s)
    capture._tick()  # the side camera's frames of those instants are still queued
    assert capture.episodes.episode.frames == 0 and capture.episodes.episode.skipped == 0
    end = stamps[-1] + 0.5 * PERIOD_S
    _press(capture, JoyButton.SUCCESS, end)  # dispatched before the last side frames
    for s in stamps[:6]:
        _frame(capture, "side", s)
    capture._tick()
    assert capture.episodes.episode.frames == 6
    _sleep_until(end + 0.3)
    for s in stamps[6:]:
        _frame(capture, "side", s)
    _frame(capture, "front", stamps[-1] + PERIOD_S)  # the first frame after SUCCESS
    _frame(capture, "side", stamps[-1] + PERIOD_S)
    capture._tick()
    assert capture.clock is None, "committed once every frame up to SUCCESS was in"
    reader = StoreReader(capture.store_path)
    assert reader.episode(0).length == 10 and reader.episode(0).info.notes["skipped_steps"] == 0
    np.testing.assert_allclose(reader.read_episode(0)["timestamp"], stamps, rtol=0, atol=1e-6)


def test_a_camera_that_stops_costs_its_steps_only_after_the_wait(capture):
    t0 = time.time()
    stamps = t0 + 0.01 + PERIOD_S * np.arange(6)
    _press(capture, JoyButton.START, t0)
    for s in stamps:
        _frame(capture, "front", s)
    for s in stamps[:3]:  # the side camera dies after three frames
        _frame(capture, "side", s)
    _press(capture, JoyButton.SUCCESS, stamps[-1] + 0.01)
    capture._tick()
    assert capture.episodes.episode.frames == 3 and capture.clock is not None, "still waiting"
    _sleep_until(stamps[-1] + 0.9)  # max_frame_wait_s (0.8 s) has passed
    capture._tick()
    assert capture.clock is None
    info = StoreReader(capture.store_path).episode(0).info
    assert StoreReader(capture.store_path).episode(0).length == 3
    assert info.notes["skipped_steps"] == 3


def test_start_waits_for_device_info_then_goes_on_without_it(tmp_path, monkeypatch):
    """A START taken before a camera's latched device_info would skip its serial check, so
    the node is not ready until it arrives; a driver that never sends one (realsense-ros)
    holds START only for ``DEVICE_INFO_WAIT_S``."""
    from ros_nodes import camera_streams

    monkeypatch.setenv("ROS_DOMAIN_ID", "231")
    monkeypatch.setattr(camera_streams, "DEVICE_INFO_WAIT_S", 0.5)
    node = create_node(
        "human_capture",
        ["--ros-args", "-p", f"store:={tmp_path / 'h.zarr'}", "-p", "uncalibrated:=true"],
    )
    try:
        cap = HumanCaptureNode(node)
        front, side = cap.streams.streams["front"], cap.streams.streams["side"]
        for name, stream in cap.streams.streams.items():
            cap.streams._on_info(stream, convert.camera_info(INTR, time.time(), name))
        refusal = cap.streams.start_refusal()
        assert refusal is not None and "/camera/front/device_info" in refusal and not cap.ready
        cap.streams._on_device_info(front, msgs.String(data='{"serial": "801", "source": "x"}'))
        assert front.serial == "801"
        assert "/camera/side/device_info" in cap.streams.start_refusal()
        time.sleep(0.6)
        assert cap.streams.start_refusal() is None and cap.ready
        assert side.serial is None, "a camera that never said is taken as reporting none"
    finally:
        node.close()
