"""From motion tracks to robot motion: calibrated views, triangulation, rigid fits, chunks.

MT-pi (and anything else that predicts where keypoints go in the images) ends here: each
predicted keypoint is triangulated from two or more calibrated views, outliers and views that
disagree are dropped, a rigid transform (Kabsch/Umeyama) maps the current 3D keypoints to the
predicted ones, and composed with the current end-effector pose it gives the target pose of
each future step. The result is the same timed ``ActionChunk`` ACT and Diffusion return, so
evaluation, deployment and intervention run it unchanged.

Conventions are those of ``robot_learning.geometry`` (the one rotation/transform module this
builds on): ``T_a_b`` maps points in b to a, quaternions (x, y, z, w), metres, pixels (u right,
v down) with (0, 0) the centre of the top-left pixel, as OpenCV.

The robot's keypoints (``keys.TRACK_POINTS``: finger_a, finger_b, base) are fixed points of the
Franka Hand given the TCP pose and the gripper width (``gripper_keypoints``), so they come from
forward kinematics on the real arm and in the simulator alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robot_learning.geometry import (
    invert_transform,
    make_transform,
    mat_from_axis_angle,
    pose_from_transform,
    transform_from_pose,
    transform_points,
)
from robot_learning.hardware.camera import CameraIntrinsics, checked_T_base_camera

log = logging.getLogger(__name__)

# -- the Franka Hand's keypoints --------------------------------------------------------------
# In the TCP frame (z along the fingers, y from finger_b to finger_a): the finger bodies are
# mounted 0.0584 m below the flange, their tip pads 0.045 m further; the TCP is 0.1034 m
# below the flange (robot_learning.sim.scene.TCP_OFFSET_M, the real arm's default). Each finger
# sits half the gripper width off the centre line.
FINGER_ROOT_FROM_FLANGE_M = 0.0584
FINGERTIP_FROM_ROOT_M = 0.045  # the pads sit on the TCP plane: the TCP is their centre
TCP_FROM_FLANGE_M = 0.1034
FINGERTIP_Z_M = FINGER_ROOT_FROM_FLANGE_M + FINGERTIP_FROM_ROOT_M - TCP_FROM_FLANGE_M
BASE_Z_M = FINGER_ROOT_FROM_FLANGE_M - TCP_FROM_FLANGE_M
GRIPPER_BASE_DEPTH_M = FINGERTIP_Z_M - BASE_Z_M  # fingertips to the base point, along z
GRIPPER_MAX_WIDTH_M = 0.08

DEFAULT_MAX_REPROJECTION_PX = 4.0
DEFAULT_MIN_RAY_ANGLE_DEG = 3.0
MIN_SPREAD_M = 0.004  # below this, keypoints are collinear for a rotation fit
# What the rigid fit may rotate: "full" (Kabsch, MT-pi's), "yaw" (about the base z axis
# only: top-down tabletop grasps, where the tilt three close keypoints give is mostly noise)
# or "none" (translation only).
ROTATION_FITS = ("full", "yaw", "none")


class TrackGeometryError(ValueError):
    """Tracks that cannot become robot motion (and why), instead of a garbage action."""


class ParallelRaysError(TrackGeometryError):
    """Two views see a point along nearly the same ray: depth is undetermined."""


def gripper_keypoints_in_tcp(width_m: float) -> np.ndarray:
    """(3, 3) finger_a, finger_b, base in the TCP frame at gripper width ``width_m``."""
    half = 0.5 * float(np.clip(width_m, 0.0, GRIPPER_MAX_WIDTH_M))
    return np.array([[0.0, half, FINGERTIP_Z_M], [0.0, -half, FINGERTIP_Z_M], [0.0, 0.0, BASE_Z_M]])


def gripper_keypoints(ee_pose: np.ndarray, width_m: float) -> np.ndarray:
    """(3, 3) the robot's track points in the base frame, from the TCP pose (7: position +
    quaternion xyzw, or a 4x4 T_base_tcp) and the gripper width: forward kinematics."""
    ee_pose = np.asarray(ee_pose, dtype=np.float64)
    T = ee_pose if ee_pose.shape == (4, 4) else transform_from_pose(ee_pose[:3], ee_pose[3:7])
    return transform_points(T, gripper_keypoints_in_tcp(width_m))


# -- calibrated views --------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraView:
    """One calibrated camera at one instant: intrinsics (with distortion) and T_base_camera
    of its optical frame."""

    name: str
    intrinsics: CameraIntrinsics
    T_base_camera: np.ndarray

    def __post_init__(self) -> None:
        T = checked_T_base_camera(self.T_base_camera, self.name)
        object.__setattr__(self, "T_base_camera", T)

    @classmethod
    def from_episode(cls, name: str, entry: Mapping | None, *, where: str) -> CameraView:
        """From an episode's stored calibration entry (``data_collection.recorder.
        camera_calibration``); a fixed camera only (a hand camera moves with the arm)."""
        if entry is None:
            raise TrackGeometryError(
                f"{where}: no calibration for camera {name!r}; motion "
                "tracks need every view calibrated (run `rl calibrate`)"
            )
        if entry.get("T_base_camera") is None or entry.get("mount", "fixed") != "fixed":
            raise TrackGeometryError(
                f"{where}: camera {name!r} is uncalibrated or on the hand (mount "
                f"{entry.get('mount')!r}); motion tracks need fixed, calibrated cameras"
            )
        intrinsics = CameraIntrinsics(
            width=int(entry["width"]),
            height=int(entry["height"]),
            fx=float(entry["fx"]),
            fy=float(entry["fy"]),
            cx=float(entry["cx"]),
            cy=float(entry["cy"]),
            distortion=tuple(float(d) for d in entry.get("distortion", ())) or (0.0,) * 5,
        )
        return cls(name, intrinsics, np.asarray(entry["T_base_camera"], dtype=np.float64))

    def to_json(self) -> dict:
        i = self.intrinsics
        return {
            "name": self.name,
            "width": i.width,
            "height": i.height,
            "fx": i.fx,
            "fy": i.fy,
            "cx": i.cx,
            "cy": i.cy,
            "distortion": list(i.distortion),
            "T_base_camera": np.asarray(self.T_base_camera).tolist(),
            "mount": "fixed",
        }

    @classmethod
    def from_json(cls, data: Mapping) -> CameraView:
        return cls.from_episode(str(data["name"]), data, where="saved camera")

    @property
    def image_size(self) -> tuple[int, int]:
        return self.intrinsics.height, self.intrinsics.width

    def project(self, points_base: np.ndarray) -> np.ndarray:
        """(N, 3) base-frame points -> (N, 2) pixels (lens distortion included); NaN for
        points at or behind the camera."""
        points = transform_points(invert_transform(self.T_base_camera), points_base)
        pixels = self.intrinsics.project(points)
        pixels[points[:, 2] <= 1e-6] = np.nan
        return pixels

    def normalized(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) ideal normalized image coordinates (x/z, y/z)."""
        pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        i = self.intrinsics
        if any(i.distortion):
            import cv2

            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)
            return cv2.undistortPointsIter(
                pixels.reshape(-1, 1, 2),
                i.matrix,
                np.asarray(i.distortion, np.float64),
                None,
                None,
                criteria,
            ).reshape(-1, 2)
        return np.stack([(pixels[:, 0] - i.cx) / i.fx, (pixels[:, 1] - i.cy) / i.fy], axis=1)

    def rays(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera centre (3,) and (N, 3) unit directions in the base frame through pixels."""
        xy = self.normalized(pixels)
        directions = np.concatenate([xy, np.ones((len(xy), 1))], axis=1)
        directions = directions @ self.T_base_camera[:3, :3].T
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return self.T_base_camera[:3, 3].copy(), directions


# -- triangulation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Triangulation:
    """One keypoint from several views."""

    point: np.ndarray  # (3,) base frame; NaN when not ok
    reprojection_px: np.ndarray  # (V,) per view; NaN where the view was missing
    used: np.ndarray  # (V,) bool: views that made the point
    ray_angle_deg: float  # largest angle between the used views' rays
    ok: bool
    reason: str = ""


def _dlt(views: Sequence[CameraView], pixels: np.ndarray) -> np.ndarray:
    """Linear triangulation on undistorted normalized coordinates (Hartley-Zisserman DLT)."""
    rows = []
    for view, pixel in zip(views, pixels, strict=True):
        x, y = view.normalized(pixel[None])[0]
        P = invert_transform(view.T_base_camera)[:3]  # [R | t], camera from base
        rows.append(x * P[2] - P[0])
        rows.append(y * P[2] - P[1])
    _, _, vt = np.linalg.svd(np.asarray(rows))
    h = vt[-1]
    return h[:3] / h[3]


def _ray_angle_deg(views: Sequence[CameraView], pixels: np.ndarray) -> float:
    dirs = np.stack([v.rays(p[None])[1][0] for v, p in zip(views, pixels, strict=True)])
    cos = np.clip(dirs @ dirs.T, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos.min())))


def triangulate_point(
    views: Sequence[CameraView],
    pixels: np.ndarray,
    *,
    max_reprojection_px: float = DEFAULT_MAX_REPROJECTION_PX,
    min_ray_angle_deg: float = DEFAULT_MIN_RAY_ANGLE_DEG,
    what: str = "keypoint",
) -> Triangulation:
    """One 3D point from its pixel position in each view ((V, 2), NaN rows: not seen there).

    The views that see it are triangulated together (DLT); while the worst view's
    reprojection error exceeds ``max_reprojection_px`` and more than two views remain, that
    view is dropped (an outlier). Two views that still disagree give ``ok`` False with the
    reason. Raises ``ParallelRaysError`` when the remaining rays are within
    ``min_ray_angle_deg`` of each other (depth undetermined), naming the views.
    """
    pixels = np.asarray(pixels, dtype=np.float64).reshape(len(views), 2)
    seen = np.isfinite(pixels).all(axis=1)
    errors = np.full(len(views), np.nan)
    nan3 = np.full(3, np.nan)
    if seen.sum() < 2:
        names = [v.name for v, s in zip(views, seen, strict=True) if s]
        return Triangulation(
            nan3,
            errors,
            seen,
            0.0,
            False,
            f"{what} seen in {len(names)} view(s) {names}; triangulation needs two",
        )
    used = seen.copy()
    while True:
        idx = np.flatnonzero(used)
        chosen = [views[i] for i in idx]
        angle = _ray_angle_deg(chosen, pixels[idx])
        if angle < min_ray_angle_deg:
            raise ParallelRaysError(
                f"{what}: the rays of views {[v.name for v in chosen]} meet at {angle:.2f} deg "
                f"(< {min_ray_angle_deg} deg): nearly parallel, depth undetermined; place the "
                "cameras to see the workspace from directions at least that far apart"
            )
        point = _dlt(chosen, pixels[idx])
        errors = np.full(len(views), np.nan)
        behind = []
        for i in np.flatnonzero(seen):
            projected = views[i].project(point[None])[0]
            errors[i] = (
                np.inf
                if not np.isfinite(projected).all()
                else float(np.linalg.norm(projected - pixels[i]))
            )
            if not np.isfinite(projected).all() and used[i]:
                behind.append(views[i].name)
        worst = idx[np.argmax(errors[idx])]
        if errors[worst] <= max_reprojection_px and not behind:
            return Triangulation(point, errors, used, angle, True)
        if len(idx) <= 2:
            reason = (
                f"{what} lies behind camera(s) {behind}"
                if behind
                else f"views {[v.name for v in chosen]} disagree on {what}: reprojection "
                f"errors {np.round(errors[idx], 1).tolist()} px exceed "
                f"{max_reprojection_px} px"
            )
            return Triangulation(nan3, errors, used, angle, False, reason)
        used[worst] = False


# -- rigid fits ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RigidFit:
    transform: np.ndarray  # 4x4, maps source points onto target points
    rms_m: float  # residual after the fit
    degenerate: bool  # source points (nearly) collinear: no twist about their line was fitted


def _minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a onto direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        other = np.eye(3)[np.argmin(np.abs(a))]
        return mat_from_axis_angle(np.cross(a, other), np.pi)
    return mat_from_axis_angle(axis, float(np.arctan2(s, c)))


def rigid_fit(
    source: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    min_spread_m: float = MIN_SPREAD_M,
    rotation: str = "full",
) -> RigidFit:
    """Least-squares rotation + translation with ``target ~ R source + t`` (Kabsch/Umeyama,
    no scale). Points that are (nearly) collinear fix no rotation about their line: then the
    smallest rotation aligning the lines is returned, flagged ``degenerate`` (a closed gripper
    keeps its twist instead of taking a random one). ``rotation`` (``ROTATION_FITS``) limits
    the rotation to one about the base z axis ("yaw", the 2D Procrustes angle of the points'
    horizontal offsets) or to none."""
    if rotation not in ROTATION_FITS:
        raise ValueError(f"rotation={rotation!r}; choose one of {ROTATION_FITS}")
    src = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    if src.shape != dst.shape or len(src) < 2:
        raise TrackGeometryError(
            f"rigid fit needs matching point sets of >= 2 points, got {src.shape} and {dst.shape}"
        )
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise TrackGeometryError("rigid fit got non-finite points")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    cs, cd = src - mu_s, dst - mu_d
    spread = np.linalg.svd(cs * np.sqrt(w)[:, None], compute_uv=False)
    degenerate = len(src) < 3 or spread[1] < min_spread_m * np.sqrt(w.max())
    if rotation != "full":
        angle = 0.0
        if rotation == "yaw":
            cross = w @ (cs[:, 0] * cd[:, 1] - cs[:, 1] * cd[:, 0])
            dot = w @ (cs[:, 0] * cd[:, 0] + cs[:, 1] * cd[:, 1])
            angle = float(np.arctan2(cross, dot)) if abs(cross) + abs(dot) > 1e-15 else 0.0
        R = mat_from_axis_angle(np.array([0.0, 0.0, 1.0]), angle)
        degenerate = False
    elif degenerate:
        line_s = np.linalg.svd(cs, full_matrices=False)[2][0]
        line_d = np.linalg.svd(cd, full_matrices=False)[2][0]
        if np.dot(cs @ line_s, cd @ line_d) < 0:  # same orientation along the line
            line_d = -line_d
        R = _minimal_rotation(line_s, line_d)
    else:
        H = (cs * w[:, None]).T @ cd
        U, _, Vt = np.linalg.svd(H)
        D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0])
        R = Vt.T @ D @ U.T
    t = mu_d - R @ mu_s
    residual = dst - (src @ R.T + t)
    rms = float(np.sqrt(w @ (residual**2).sum(axis=1)))
    return RigidFit(make_transform(R, t), rms, bool(degenerate))


def future_ee_pose(
    current_ee: np.ndarray, current_points: np.ndarray, future_points: np.ndarray, **fit_kwargs
) -> tuple[np.ndarray, RigidFit]:
    """T_base_tcp of the future step: the rigid motion of the keypoints (current -> future,
    base frame) applied to the current end-effector pose (4x4 or 7-vector)."""
    current_ee = np.asarray(current_ee, dtype=np.float64)
    T_now = (
        current_ee
        if current_ee.shape == (4, 4)
        else transform_from_pose(current_ee[:3], current_ee[3:7])
    )
    fit = rigid_fit(current_points, future_points, **fit_kwargs)
    return fit.transform @ T_now, fit


# -- tracks -> chunk ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkGeometry:
    """What ``tracks_to_chunk`` did with each step, for logs and tests."""

    points_3d: np.ndarray  # (H, P, 3) triangulated future keypoints (NaN where rejected)
    reprojection_px: np.ndarray  # (H, P, V)
    fit_rms_m: np.ndarray  # (H,) NaN for steps not fitted
    steps_used: int  # chunk length (a step that cannot be fitted ends the chunk)
    problems: list[str]


def tracks_to_chunk(
    tracks: Mapping[str, np.ndarray],
    grasp: np.ndarray,
    views: Mapping[str, CameraView],
    *,
    ee_pose: np.ndarray,
    gripper_width_m: float,
    time_s: float,
    period_s: float,
    max_reprojection_px: float = DEFAULT_MAX_REPROJECTION_PX,
    min_ray_angle_deg: float = DEFAULT_MIN_RAY_ANGLE_DEG,
    max_fit_rms_m: float = 0.02,
    rotation_smoothing_degree: int | None = None,
    rotation_fit: str = "full",
):
    """A timed end-effector chunk from predicted future tracks.

    ``tracks[camera]``: (H, P, 2) pixel positions of the P track points at steps t+1..t+H
    (NaN: not predicted in that view); ``grasp``: (H,) in [0, 1]; ``views``: the calibrated
    cameras; ``ee_pose`` (7) and ``gripper_width_m``: the robot state at ``time_s``, whose
    forward kinematics give the current keypoints. Target i is the pose of step t+1+i, at
    time ``time_s + i * period_s`` (the first at the observation time: a target leads the
    state by one step, as recorded actions do). Steps after the first one that cannot be
    fitted (too few agreeing views, residual above ``max_fit_rms_m``) are cut off; if the
    first cannot, ``TrackGeometryError`` says why. ``rotation_smoothing_degree`` d fits each
    step's rotation from the current pose (a rotation vector) with a polynomial of degree d
    in time through zero at the observation (``smooth_rotations``): the rotation, which three
    keypoints a few centimetres apart fix poorly, averages its pixel noise over the chunk;
    translations (the keypoints' centroid, well fixed) are left as fitted. ``rotation_fit``
    (``ROTATION_FITS``) limits what the fit may rotate.
    Returns (ActionChunk, ChunkGeometry).
    """
    from robot_learning.runtime import ActionChunk

    names = sorted(tracks)
    missing = [n for n in names if n not in views]
    if missing:
        raise TrackGeometryError(
            f"no calibration for view(s) {missing} (calibrated: {sorted(views)})"
        )
    if len(names) < 2:
        raise TrackGeometryError(
            f"tracks from {len(names)} view(s) {names}; triangulation needs two calibrated views"
        )
    stacked = np.stack([np.asarray(tracks[n], dtype=np.float64) for n in names], axis=2)
    horizon, num_points = stacked.shape[:2]  # (H, P, V, 2)
    grasp = np.asarray(grasp, dtype=np.float64).reshape(horizon)
    chosen = [views[n] for n in names]
    current = gripper_keypoints(ee_pose, gripper_width_m)
    if current.shape[0] != num_points:
        raise TrackGeometryError(
            f"tracks have {num_points} points; the gripper has {current.shape[0]}"
        )
    T_now = transform_from_pose(np.asarray(ee_pose)[:3], np.asarray(ee_pose)[3:7])
    points = np.full((horizon, num_points, 3), np.nan)
    errors = np.full((horizon, num_points, len(names)), np.nan)
    rms = np.full(horizon, np.nan)
    positions, quats, problems = [], [], []
    for h in range(horizon):
        bad = []
        for p in range(num_points):
            tri = triangulate_point(
                chosen,
                stacked[h, p],
                max_reprojection_px=max_reprojection_px,
                min_ray_angle_deg=min_ray_angle_deg,
                what=f"point {p} of step {h + 1}",
            )
            errors[h, p] = tri.reprojection_px
            if tri.ok:
                points[h, p] = tri.point
            else:
                bad.append(tri.reason)
        if bad:
            problems.extend(bad)
            break
        T_future, fit = future_ee_pose(T_now, current, points[h], rotation=rotation_fit)
        rms[h] = fit.rms_m
        if fit.rms_m > max_fit_rms_m:
            problems.append(
                f"step {h + 1}: predicted keypoints are not a rigid motion of the "
                f"gripper's (residual {1e3 * fit.rms_m:.1f} mm > "
                f"{1e3 * max_fit_rms_m:.0f} mm)"
            )
            break
        position, quat = pose_from_transform(T_future)
        positions.append(position)
        quats.append(quat)
    steps = len(positions)
    if steps == 0:
        raise TrackGeometryError(
            "no end-effector target from the predicted tracks: " + "; ".join(problems)
        )
    if rotation_smoothing_degree and steps > rotation_smoothing_degree + 1:
        quats = list(smooth_rotations(T_now, np.asarray(quats), rotation_smoothing_degree))
    if problems:
        log.warning("motion-track chunk cut to %d of %d steps: %s", steps, horizon, problems[0])
    chunk = ActionChunk(
        times_s=time_s + np.arange(steps) * period_s,
        positions=np.asarray(positions),
        quaternions=np.asarray(quats),
        gripper=np.clip(grasp[:steps], 0.0, 1.0),
    )
    return chunk, ChunkGeometry(points, errors, rms, steps, problems)


def smooth_rotations(T_now: np.ndarray, quaternions: np.ndarray, degree: int) -> np.ndarray:
    """Least-squares polynomial (degree ``degree``, zero at step 0 = now) through each step's
    rotation vector relative to the current orientation (base frame); (H, 4) xyzw out."""
    from scipy.spatial.transform import Rotation

    steps = np.arange(1, len(quaternions) + 1, dtype=np.float64)
    basis = np.stack([steps**k for k in range(1, degree + 1)], axis=1)  # (H, d)
    now = Rotation.from_matrix(T_now[:3, :3])
    turned = (Rotation.from_quat(quaternions) * now.inv()).as_rotvec()
    fitted = basis @ np.linalg.lstsq(basis, turned, rcond=None)[0]
    return (Rotation.from_rotvec(fitted) * now).as_quat()
