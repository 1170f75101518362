"""RealSenseCamera on librealsense's software_device: the real syncer, rs.align and profiles."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pyrealsense2 as rs
import pytest

from robot_learning.hardware.camera import CameraIntrinsics, CameraTimeoutError
from robot_learning.hardware.realsense import (
    DeviceClockMapper,
    RealSenseCamera,
    RealSenseNotFoundError,
    checked_T_base_camera,
    depth_to_mm,
    intrinsics_from_rs,
    resolve_serial,
)
from tests.hardware.software_realsense import SoftwareRealSense

W, H = 64, 48
FRAME_MS = 1000.0 / 30.0
# Values exactly representable in float32 (librealsense stores intrinsics as float).
COLOR_INTR = CameraIntrinsics(
    width=W,
    height=H,
    fx=60.0,
    fy=61.5,
    cx=31.5,
    cy=23.75,
    distortion=(0.125, -0.0625, 0.001953125, -0.0009765625, 0.015625),
)
DEPTH_INTR = CameraIntrinsics(width=W, height=H, fx=50.0, fy=50.0, cx=32.0, cy=24.0)
# Depth camera 5 cm to the left of the color camera (as on a D435), turned 3 degrees about
# the vertical so that the rotation's memory order (librealsense: column-major) matters.
T_COLOR_DEPTH = np.eye(4)
T_COLOR_DEPTH[:3, :3] = cv2.Rodrigues(np.array([0.0, np.radians(3.0), 0.0]))[0]
T_COLOR_DEPTH[0, 3] = 0.05


def depth_scene_mm() -> np.ndarray:
    """A slanted surface: every column a different depth, so a wrong shift is visible."""
    u = np.arange(W)[None, :]
    v = np.arange(H)[:, None]
    return (900 + 20 * u + 0 * v).astype(np.uint16)


def color_scene(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def make_rig(depth_units_m: float = 0.001) -> SoftwareRealSense:
    return SoftwareRealSense(
        serial="841512070001",
        color_intrinsics=COLOR_INTR,
        depth_intrinsics=DEPTH_INTR,
        T_color_depth=T_COLOR_DEPTH,
        depth_units_m=depth_units_m,
    )


def inject(
    rig: SoftwareRealSense,
    n: int,
    t0_ms: float,
    *,
    depth_raw: np.ndarray | None = None,
    domain: rs.timestamp_domain = rs.timestamp_domain.global_time,
) -> float:
    t_ms = t0_ms + n * FRAME_MS
    rig.inject(
        color=color_scene(n),
        depth=depth_scene_mm() if depth_raw is None else depth_raw,
        timestamp_ms=t_ms,
        frame_number=n,
        domain=domain,
    )
    return t_ms


def expected_alignment_checks(aligned: np.ndarray) -> tuple[int, int]:
    """Project depth pixels into color with OpenCV; count matches within one depth column.

    Returns (matches, compared). A depth image that ignored the 5 cm baseline would be off by
    2-6 columns (40-120 mm) almost everywhere.
    """
    depth = depth_scene_mm().astype(np.float64) / 1000.0
    vs, us = np.mgrid[2 : H - 2, 2 : W - 2]
    z = depth[vs, us]
    pts = np.stack(
        [(us - DEPTH_INTR.cx) * z / DEPTH_INTR.fx, (vs - DEPTH_INTR.cy) * z / DEPTH_INTR.fy, z],
        axis=-1,
    ).reshape(-1, 3)
    rvec = cv2.Rodrigues(T_COLOR_DEPTH[:3, :3])[0]
    pix, _ = cv2.projectPoints(
        pts, rvec, T_COLOR_DEPTH[:3, 3], COLOR_INTR.matrix, np.array(COLOR_INTR.distortion)
    )
    pix = np.rint(pix.reshape(-1, 2)).astype(int)
    # rs.align writes a few stray values into the outermost color columns where the strong
    # lens distortion squeezes several depth columns together; compare the image proper.
    inside = (pix[:, 0] >= 4) & (pix[:, 0] < W - 4) & (pix[:, 1] >= 0) & (pix[:, 1] < H)
    got = aligned[pix[inside, 1], pix[inside, 0]].astype(int)
    want = (z.reshape(-1)[inside] * 1000).round().astype(int)
    return int(np.sum(np.abs(got - want) <= 20)), int(inside.sum())


def test_round_trip_pixels_alignment_intrinsics_timestamps_counters():
    rig = make_rig()
    with RealSenseCamera(name="front", source=rig.source()) as cam:
        assert cam.intrinsics == COLOR_INTR
        assert cam.serial == "841512070001"
        t0_ms = time.time() * 1000.0
        inject(rig, 0, t0_ms)  # the syncer learns the streams on the first pair
        for n in range(1, 6):
            t_ms = inject(rig, n, t0_ms)
            frame = cam.read(timeout_s=2.0)
            assert frame.frame_index == n
            assert frame.camera_name == "front"
            np.testing.assert_array_equal(frame.color, color_scene(n))
            assert frame.timestamp_s == pytest.approx(t_ms / 1000.0, abs=1e-6)
            assert frame.received_s >= frame.timestamp_s - 1.0
            assert frame.depth is not None and frame.depth.dtype == np.uint16
            assert frame.depth.shape == (H, W)
        ok, total = expected_alignment_checks(frame.depth)
        assert total > 0.6 * (W - 4) * (H - 4)
        # A handful near the left corners, where the lens distortion is strongest, land one
        # column further off; unaligned or mis-rotated depth gets most pixels wrong.
        assert ok >= 0.98 * total, f"{total - ok} of {total} depth pixels landed elsewhere"
        assert cam.frames_dropped == 0
        inject(rig, 9, t0_ms)  # frames 6..8 lost on the way
        assert cam.read(timeout_s=2.0).frame_index == 9
        assert cam.frames_dropped == 3


def test_alignment_check_detects_ignored_extrinsics():
    """The alignment assertion above would fail for an unaligned (raw) depth image."""
    ok, total = expected_alignment_checks(depth_scene_mm())
    assert ok < 0.5 * total


def test_camera_that_stops_delivering_raises_timeout_naming_it():
    rig = make_rig()
    with RealSenseCamera(name="wrist", source=rig.source()) as cam:
        t0_ms = time.time() * 1000.0
        inject(rig, 0, t0_ms)
        inject(rig, 1, t0_ms)
        cam.read(timeout_s=2.0)
        with pytest.raises(CameraTimeoutError, match=r"'wrist'.*841512070001.*0\.200 s"):
            cam.read(timeout_s=0.2)


def test_read_latest_returns_newest_and_rejects_stale():
    rig = make_rig()
    with RealSenseCamera(name="front", source=rig.source()) as cam:
        t0_ms = time.time() * 1000.0
        for n in range(4):
            inject(rig, n, t0_ms - 4 * FRAME_MS)
        assert cam.read_latest(max_age_s=1.0).frame_index == 3
    stale = make_rig()
    with RealSenseCamera(name="front", source=stale.source()) as cam:
        stale_t0_ms = time.time() * 1000.0 - 5000.0
        inject(stale, 0, stale_t0_ms)
        inject(stale, 1, stale_t0_ms)
        with pytest.raises(CameraTimeoutError, match=r"'front'.* old"):
            cam.read_latest(max_age_s=0.5)


def test_hardware_clock_timestamps_are_mapped_onto_station_clock():
    rig = make_rig()
    # Color only: librealsense's matcher does not pair hardware_clock frames of a software
    # device (see SoftwareRealSense.source); the clock path is the same either way.
    cam = RealSenseCamera(name="front", source=rig.source(with_depth=False), enable_depth=False)
    with cam:
        device_t0_ms = 12_345.0  # device clock: ms since the camera powered up
        stamps = []
        for n in range(4):
            rig.inject(
                color=color_scene(n),
                depth=None,
                timestamp_ms=device_t0_ms + n * FRAME_MS,
                frame_number=n,
                domain=rs.timestamp_domain.hardware_clock,
            )
            frame = cam.read(timeout_s=2.0)
            assert frame.frame_index == n and frame.depth is None
            np.testing.assert_array_equal(frame.color, color_scene(n))
            assert frame.timestamp_s <= frame.received_s
            assert abs(frame.timestamp_s - time.time()) < 5.0  # station clock, not device ms
            stamps.append(frame.timestamp_s)
        assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))


def test_depth_units_other_than_millimetres_are_converted():
    rig = make_rig(depth_units_m=0.0001)  # D405-style 0.1 mm units
    with RealSenseCamera(name="close", source=rig.source()) as cam:
        raw = np.full((H, W), 10_000, np.uint16)  # 1 m
        t0_ms = time.time() * 1000.0
        inject(rig, 0, t0_ms, depth_raw=raw)
        inject(rig, 1, t0_ms, depth_raw=raw)
        depth = cam.read(timeout_s=2.0).depth
        assert depth is not None and set(np.unique(depth)) <= {0, 1000}
        assert np.mean(depth == 1000) > 0.8
    np.testing.assert_array_equal(
        depth_to_mm(np.array([0, 16, 65535], np.uint16), 0.0001), [0, 2, 6554]
    )


def test_clock_mapper_recovers_offset_from_jittery_arrivals():
    rng = np.random.default_rng(0)
    mapper = DeviceClockMapper(window_s=10.0)
    offset_s, min_latency_s = 1_700_000_000.0, 0.002
    errors = []
    for i in range(300):
        capture_s = offset_s + i / 30.0
        latency_s = min_latency_s + rng.exponential(0.004)
        mapped = mapper.map(device_ms=i * 1000.0 / 30.0, arrival_s=capture_s + latency_s)
        errors.append(mapped - capture_s)
    assert all(e >= 0 for e in errors)  # never later than the true capture time + delay
    assert max(errors[30:]) < min_latency_s + 0.002  # converges to the smallest delay
    # A device reset (clock back to 0) resynchronises instead of mapping into the past.
    mapped = mapper.map(device_ms=0.0, arrival_s=offset_s + 20.0)
    assert mapped == pytest.approx(offset_s + 20.0)


def test_serial_selection_errors_list_connected_serials():
    assert resolve_serial("222", ["111", "222"]) == "222"
    assert resolve_serial(None, ["111"]) == "111"
    with pytest.raises(RealSenseNotFoundError, match=r"'333'.*\['111', '222'\]"):
        resolve_serial("333", ["222", "111"])
    with pytest.raises(RealSenseNotFoundError, match=r"pass serial="):
        resolve_serial(None, ["111", "222"])
    with pytest.raises(RealSenseNotFoundError, match="no RealSense"):
        resolve_serial(None, [])


def test_connect_to_missing_serial_on_real_context_names_it():
    cam = RealSenseCamera(name="front", serial="does-not-exist")
    with pytest.raises(RealSenseNotFoundError, match="does-not-exist"):
        cam.connect()
    assert not cam.is_connected
    with pytest.raises(RuntimeError, match="connect first"):
        _ = cam.intrinsics


def test_extrinsics_are_validated_and_exposed():
    T = np.eye(4)
    T[:3, 3] = [0.5, 0.0, 0.8]
    cam = RealSenseCamera(name="front", serial="x", extrinsics=T)
    np.testing.assert_array_equal(cam.extrinsics, T)
    assert checked_T_base_camera(None, "c") is None
    bad = np.eye(4)
    bad[0, 0] = 2.0
    with pytest.raises(ValueError, match="'front'.*rigid"):
        RealSenseCamera(name="front", extrinsics=bad)


def test_fisheye_distortion_is_refused_rather_than_mislabelled():
    intr = rs.intrinsics()
    intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = 8, 8, 1, 1, 4, 4
    intr.model = rs.distortion.kannala_brandt4
    with pytest.raises(ValueError, match="kannala"):
        intrinsics_from_rs(intr)


def test_two_cameras_by_serial_stream_independently():
    rigs = {
        serial: SoftwareRealSense(
            serial=serial,
            color_intrinsics=COLOR_INTR,
            depth_intrinsics=DEPTH_INTR,
            T_color_depth=T_COLOR_DEPTH,
        )
        for serial in ("841512070001", "841512070002")
    }
    cams = [
        RealSenseCamera(name=f"cam{i}", source=rig.source()) for i, rig in enumerate(rigs.values())
    ]
    for cam in cams:
        cam.connect()
    try:
        t0_ms = time.time() * 1000.0
        for i, rig in enumerate(rigs.values()):
            for n in range(2):
                rig.inject(
                    color=color_scene(10 * i + n),
                    depth=depth_scene_mm(),
                    timestamp_ms=t0_ms + n * FRAME_MS,
                    frame_number=n,
                )
        for i, cam in enumerate(cams):
            frame = cam.read(timeout_s=2.0)
            assert frame.camera_name == f"cam{i}" and cam.serial == f"84151207000{i + 1}"
            np.testing.assert_array_equal(frame.color, color_scene(10 * i + 1))
    finally:
        for cam in cams:
            cam.disconnect()
