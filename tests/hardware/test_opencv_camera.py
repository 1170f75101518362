"""OpenCVCamera on a video file written by cv2.VideoWriter (MJPEG in AVI, always built in)."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from robot_learning.hardware.camera import CameraIntrinsics, CameraTimeoutError
from robot_learning.hardware.opencv_camera import (
    CameraOpenError,
    OpenCVCamera,
    load_intrinsics_yaml,
    monotonic_ms_to_station_s,
    nominal_intrinsics,
)

W, H, FPS, N = 64, 48, 10.0, 12
DATA = Path(__file__).parent / "data"


def frame_bgr(i: int) -> np.ndarray:
    """Frame i: blue = 10 + 15 i, red = 240 - 15 i, a white square whose column encodes i."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 10 + 15 * i  # B
    img[..., 2] = 240 - 15 * i  # R
    img[16:32, 4 * i : 4 * i + 16] = 255
    return img


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(N):
        writer.write(frame_bgr(i))
    writer.release()
    return path


def test_file_frames_come_out_in_order_as_rgb_with_media_timestamps(video: Path):
    with OpenCVCamera(name="side", source=video) as cam:
        assert not cam.is_live
        frames = [cam.read(timeout_s=2.0) for _ in range(N)]
    for i, frame in enumerate(frames):
        assert frame.frame_index == i and frame.camera_name == "side"
        assert frame.color.shape == (H, W, 3) and frame.color.dtype == np.uint8
        expected_rgb = cv2.cvtColor(frame_bgr(i), cv2.COLOR_BGR2RGB).astype(int)
        assert np.abs(frame.color.astype(int) - expected_rgb).mean() < 4.0  # JPEG loss only
        bright_cols = np.flatnonzero(frame.color[24].min(axis=1) > 200)
        assert bright_cols.min() == pytest.approx(4 * i, abs=1)
    spacing = np.diff([f.timestamp_s for f in frames])
    np.testing.assert_allclose(spacing, 1.0 / FPS, atol=1e-3)


def test_end_of_stream_raises_timeout_naming_file_promptly(video: Path):
    with OpenCVCamera(name="side", source=video) as cam:
        for _ in range(N):
            cam.read(timeout_s=2.0)
        with pytest.raises(CameraTimeoutError, match=rf"'side'.*end of video file.*{video.name}"):
            cam.read(timeout_s=30.0)  # the end is known: no 30 s wait


def test_wrong_path_and_unreadable_file_give_clear_errors(tmp_path: Path):
    missing = tmp_path / "nope.avi"
    with pytest.raises(FileNotFoundError, match="nope.avi"):
        OpenCVCamera(name="side", source=missing).connect()
    junk = tmp_path / "junk.avi"
    junk.write_text("not a video")
    with pytest.raises(CameraOpenError, match=r"'side'.*junk.avi"):
        OpenCVCamera(name="side", source=junk).connect()


def test_nominal_intrinsics_from_fov_when_uncalibrated(video: Path):
    cam = OpenCVCamera(name="side", source=video, horizontal_fov_deg=90.0)
    with pytest.raises(RuntimeError, match="connect first"):
        _ = cam.intrinsics
    with cam:
        intr = cam.intrinsics
    assert (intr.width, intr.height) == (W, H)
    assert intr.fx == pytest.approx(W / 2.0) and intr.fy == intr.fx  # tan(45 deg) = 1
    assert (intr.cx, intr.cy) == ((W - 1) / 2.0, (H - 1) / 2.0)
    assert nominal_intrinsics(640, 480, 60.0).fx == pytest.approx(320.0 / math.tan(math.pi / 6))


def test_calibration_yaml_formats_give_the_same_intrinsics(tmp_path: Path, video: Path):
    expected = load_intrinsics_yaml(DATA / "camera_info_64x48.yaml")  # ROS camera_info format
    assert expected == CameraIntrinsics(
        width=64,
        height=48,
        fx=58.25,
        fy=58.5,
        cx=31.75,
        cy=23.5,
        distortion=(-0.0625, 0.03125, 0.001, -0.002, 0.0),
    )
    flat = tmp_path / "flat.yaml"
    flat.write_text(
        "width: 64\nheight: 48\nfx: 58.25\nfy: 58.5\ncx: 31.75\ncy: 23.5\n"
        "distortion: [-0.0625, 0.03125, 0.001, -0.002, 0.0]\n"
    )
    assert load_intrinsics_yaml(flat) == expected
    storage = tmp_path / "opencv.yaml"
    fs = cv2.FileStorage(str(storage), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 64)
    fs.write("image_height", 48)
    fs.write("camera_matrix", expected.matrix)
    fs.write("distortion_coefficients", np.array([expected.distortion]))
    fs.release()
    assert load_intrinsics_yaml(storage) == expected
    T = np.eye(4)
    T[:3, 3] = [0.6, -0.2, 0.9]
    with OpenCVCamera(name="side", source=video, calibration_path=flat, extrinsics=T) as cam:
        assert cam.intrinsics == expected
        np.testing.assert_array_equal(cam.extrinsics, T)


def test_calibration_errors_name_file_and_field(tmp_path: Path, video: Path):
    partial = tmp_path / "partial.yaml"
    partial.write_text("width: 64\nheight: 48\nfx: 50\n")
    with pytest.raises(ValueError, match=r"partial.yaml.*'fy'"):
        load_intrinsics_yaml(partial)
    big = tmp_path / "big.yaml"
    big.write_text("width: 640\nheight: 480\nfx: 500\nfy: 500\ncx: 320\ncy: 240\n")
    with pytest.raises(ValueError, match=r"640x480.*64x48"):
        OpenCVCamera(name="side", source=video, calibration_path=big).connect()
    with pytest.raises(ValueError, match="'side'.*rigid"):
        OpenCVCamera(name="side", source=video, extrinsics=np.ones((4, 4)))


def test_disconnect_stops_reader_and_is_idempotent(video: Path):
    cam = OpenCVCamera(name="side", source=video, buffer_frames=2)
    cam.connect()
    cam.connect()
    cam.read(timeout_s=2.0)
    reader = next(t for t in threading.enumerate() if t.name == "camera-side")
    cam.disconnect()
    cam.disconnect()
    assert not reader.is_alive() and not cam.is_connected
    with pytest.raises(RuntimeError, match="not connected"):
        cam.read(timeout_s=0.1)


def test_v4l2_buffer_timestamps_move_to_wall_clock_only_when_plausible():
    now_s = time.time()
    offset_s = now_s - 5000.0  # wall - monotonic
    exposure_ms = (5000.0 - 0.030) * 1000.0  # captured 30 ms before it was dequeued
    assert monotonic_ms_to_station_s(exposure_ms, now_s, wall_minus_monotonic_s=offset_s) == (
        pytest.approx(now_s - 0.030)
    )
    assert monotonic_ms_to_station_s(0.0, now_s, wall_minus_monotonic_s=offset_s) == now_s
    future_ms = (5000.0 + 2.0) * 1000.0
    assert monotonic_ms_to_station_s(future_ms, now_s, wall_minus_monotonic_s=offset_s) == now_s
