"""Motion tracks -> robot motion: triangulation, rigid fits and chunks against known answers,
and the acceptance figure in the simulated workcell (noise-free tracks: within 5 mm, 2 deg)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.geometry import (
    look_at_mat,
    make_transform,
    mat_from_rotvec,
    transform_error,
    transform_from_pose,
    transform_points,
)
from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.track_geometry import (
    CameraView,
    ParallelRaysError,
    TrackGeometryError,
    gripper_keypoints,
    rigid_fit,
    tracks_to_chunk,
    triangulate_point,
)

INTRINSICS = CameraIntrinsics(width=320, height=240, fx=290.0, fy=290.0, cx=159.5, cy=119.5)


def view(name: str, eye, target=(0.45, 0.0, 0.15), distortion=None) -> CameraView:
    intr = (
        INTRINSICS
        if distortion is None
        else CameraIntrinsics(**{**INTRINSICS.__dict__, "distortion": distortion})
    )
    forward = np.asarray(target, float) - np.asarray(eye, float)
    return CameraView(name, intr, make_transform(look_at_mat(forward, [0, 0, 1]), eye))


FRONT = view("front", (1.35, 0.0, 0.8))
SIDE = view("side", (0.45, -1.05, 0.65), distortion=(0.1, -0.05, 0.001, 0.0, 0.0))
TOP = view("top", (0.5, 0.3, 1.4))


def test_triangulation_is_exact_and_drops_the_view_that_disagrees():
    point = np.array([0.5, 0.05, 0.2])
    pixels = np.stack([v.project(point[None])[0] for v in (FRONT, SIDE, TOP)])
    tri = triangulate_point([FRONT, SIDE, TOP], pixels)
    assert tri.ok and np.allclose(tri.point, point, atol=1e-6)
    assert tri.used.all() and np.nanmax(tri.reprojection_px) < 1e-4

    pixels[2] += (25.0, -10.0)  # one view mistracked the point
    tri = triangulate_point([FRONT, SIDE, TOP], pixels)
    assert tri.ok and np.allclose(tri.point, point, atol=1e-6)
    assert tri.used.tolist() == [True, True, False] and tri.reprojection_px[2] > 20

    two = triangulate_point([FRONT, TOP], pixels[[0, 2]])
    assert not two.ok and "disagree" in two.reason and np.isnan(two.point).all()

    one = triangulate_point([FRONT, SIDE], np.array([pixels[0], [np.nan, np.nan]]))
    assert not one.ok and "1 view(s) ['front']" in one.reason


def test_nearly_parallel_rays_are_refused_with_the_views_named():
    twin = view("front_twin", (1.36, 0.0, 0.8))  # 1 cm beside the front camera
    point = np.array([0.5, 0.0, 0.2])
    pixels = np.stack([v.project(point[None])[0] for v in (FRONT, twin)])
    with pytest.raises(ParallelRaysError, match=r"\['front', 'front_twin'\].*parallel"):
        triangulate_point([FRONT, twin], pixels)


def test_rigid_fit_recovers_a_motion_and_keeps_the_twist_of_collinear_points():
    rng = np.random.default_rng(0)
    source = gripper_keypoints(np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0]), 0.05)
    motion = make_transform(mat_from_rotvec([0.1, -0.2, 0.3]), [0.02, -0.01, 0.05])
    fit = rigid_fit(source, transform_points(motion, source))
    assert fit.rms_m < 1e-9 and not fit.degenerate
    assert max(transform_error(fit.transform, motion)) < 1e-6  # arccos: ~sqrt(eps) rad
    # a closed gripper: the three points lie on one line; no twist about it is invented
    line = gripper_keypoints(np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0]), 0.0)
    shifted = line + rng.normal(0, 1e-5, line.shape) + [0.01, 0.0, 0.0]
    fit = rigid_fit(line, shifted)
    assert fit.degenerate and np.degrees(np.arccos((np.trace(fit.transform[:3, :3]) - 1) / 2)) < 0.1


def test_rigid_fit_limited_to_yaw_or_to_translation():
    source = gripper_keypoints(np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0]), 0.06)
    yaw = make_transform(mat_from_rotvec([0.0, 0.0, 0.4]), [0.03, -0.02, -0.05])
    fit = rigid_fit(source, transform_points(yaw, source), rotation="yaw")
    assert fit.rms_m < 1e-9 and max(transform_error(fit.transform, yaw)) < 1e-6
    # a tilt is not followed: the fit stays a turn about the vertical, the tilt in the residual
    tilted = make_transform(mat_from_rotvec([0.2, 0.0, 0.4]), [0.03, -0.02, -0.05])
    fit = rigid_fit(source, transform_points(tilted, source), rotation="yaw")
    np.testing.assert_allclose(fit.transform[2, :3], [0.0, 0.0, 1.0], atol=1e-12)
    assert fit.rms_m > 1e-3
    moved = transform_points(tilted, source)
    fit = rigid_fit(source, moved, rotation="none")
    np.testing.assert_allclose(fit.transform[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(fit.transform[:3, 3], moved.mean(0) - source.mean(0), atol=1e-12)
    with pytest.raises(ValueError, match="rotation='roll'"):
        rigid_fit(source, moved, rotation="roll")


def test_tracks_become_a_chunk_anchored_at_the_observation_time():
    start = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])
    T0 = transform_from_pose(start[:3], start[3:])
    horizon, poses = 5, []
    for h in range(1, horizon + 1):
        step = make_transform(mat_from_rotvec([0, 0, 0.05 * h]), [0.01 * h, -0.005 * h, 0.0])
        poses.append(step @ T0)
    tracks = {
        v.name: np.stack([v.project(gripper_keypoints(T, 0.06)) for T in poses])
        for v in (FRONT, SIDE)
    }
    views = {"front": FRONT, "side": SIDE}
    chunk, geometry = tracks_to_chunk(
        tracks,
        np.linspace(0, 1, horizon),
        views,
        ee_pose=start,
        gripper_width_m=0.06,
        time_s=12.0,
        period_s=0.1,
    )
    assert np.allclose(chunk.times_s, 12.0 + 0.1 * np.arange(horizon))
    for i, T in enumerate(poses):
        got = transform_from_pose(chunk.positions[i], chunk.quaternions[i])
        assert max(transform_error(got, T)) < 1e-6
    assert geometry.steps_used == horizon and not geometry.problems

    # a view that loses the points from step 3 on: the chunk ends before it, and says so
    broken = {k: v.copy() for k, v in tracks.items()}
    broken["side"][2:] = np.nan
    chunk, geometry = tracks_to_chunk(
        broken,
        np.zeros(horizon),
        views,
        ee_pose=start,
        gripper_width_m=0.06,
        time_s=0.0,
        period_s=0.1,
    )
    assert len(chunk) == 2 and "needs two" in geometry.problems[0]
    broken["side"][:] = np.nan
    with pytest.raises(TrackGeometryError, match="no end-effector target"):
        tracks_to_chunk(
            broken,
            np.zeros(horizon),
            views,
            ee_pose=start,
            gripper_width_m=0.06,
            time_s=0.0,
            period_s=0.1,
        )
    with pytest.raises(TrackGeometryError, match=r"no calibration for view\(s\) \['side'\]"):
        tracks_to_chunk(
            tracks,
            np.zeros(horizon),
            {"front": FRONT},
            ee_pose=start,
            gripper_width_m=0.06,
            time_s=0.0,
            period_s=0.1,
        )


def test_sim_forward_kinematics_and_noise_free_tracks_recover_the_motion():
    """Acceptance: the expert's lift in the workcell, its true keypoints projected through
    the front and side cameras; chunks within 5 mm and 2 degrees of the reached poses."""
    from benchmarks.track_geometry import chunk_errors, record_episodes

    recordings = record_episodes(1, seed=4)
    rec = recordings[0]
    fk = np.stack([gripper_keypoints(p, w) for p, w in zip(rec.ee_poses, rec.widths, strict=True)])
    assert np.abs(fk - rec.keypoints).max() < 1e-4  # the FK model is the simulated hand
    assert rec.widths.min() < 0.06 < rec.widths.max()  # the gripper closed on the cube
    errors = chunk_errors(recordings, 0.0, horizon=16, stride=2)
    assert errors["failed"] == 0 and errors["chunks"] > 10
    assert errors["translation_mm"].max() < 5.0 and errors["rotation_deg"].max() < 2.0
    noisy = chunk_errors(recordings, 1.0, horizon=16, stride=2)
    assert np.median(noisy["translation_mm"]) > np.median(errors["translation_mm"])
