"""Hand-eye calibration, eye-in-hand and eye-to-hand: OpenCV's five ``calibrateHandEye``
methods compared, then one joint refinement of the reprojection error over all views.

The two set-ups and what is solved (``A_i`` is what the robot reports for view i):

- ``eye_in_hand`` (wrist camera, board on the table): X = T_hand_camera, Y = T_base_board;
- ``eye_to_hand`` (fixed camera, board on the gripper): X = T_base_camera, Y = T_hand_board.

Both predict the board in the camera as ``T_camera_board_i = X^-1 @ M_i @ Y`` with
``M_i = T_hand_base_i`` (eye-in-hand) or ``T_base_hand_i`` (eye-to-hand). OpenCV pitfalls
handled here: ``method=`` is passed by keyword (positionally it lands on an output argument
and Tsai runs silently), and eye-to-hand passes the *inverse* hand poses to
``calibrateHandEye`` (its result is then T_base_camera). opencv-python-headless 5.x has no
``calibrateHandEye``; the project pins 4.14.0.94.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import cv2
import numpy as np
from scipy.optimize import least_squares
from scipy.optimize._numdiff import approx_derivative, group_columns
from scipy.sparse import lil_matrix

from calibration.detection import BoardDetection, estimate_board_pose
from calibration.intrinsics import CalibrationInputError
from robot_learning.geometry import (
    invert_transform,
    make_transform,
    mean_transform,
    rotvec_from_mat,
    transform_error,
    transform_points,
)
from robot_learning.hardware.camera import CameraIntrinsics

logger = logging.getLogger(__name__)

HandEyeMode = Literal["eye_in_hand", "eye_to_hand"]
HAND_EYE_MODES: tuple[HandEyeMode, ...] = ("eye_in_hand", "eye_to_hand")
HAND_EYE_METHODS = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI,
    "park": cv2.CALIB_HAND_EYE_PARK,
    "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "andreff": cv2.CALIB_HAND_EYE_ANDREFF,
    "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
MIN_HAND_EYE_VIEWS = 5
MIN_ROTATION_DEG = 3.0  # a relative motion smaller than this carries no rotation information


class DegenerateMotionError(CalibrationInputError):
    """The robot motions cannot determine the hand-eye transform (no or one rotation axis)."""


@dataclass(frozen=True)
class RefineOptions:
    """What the joint refinement may adjust, and how far it may trust the robot.

    ``robot_pose_std_*``: the accuracy of the reported hand poses (per axis); zero treats
    them as exact. ``pixel_sigma``: the corner noise the priors are weighed against."""

    refine_intrinsics: bool = True
    robot_pose_std_mm: float = 0.1
    robot_pose_std_deg: float = 0.01
    pixel_sigma: float = 0.1
    loss: str = "soft_l1"  # scipy least_squares loss; robust to a few bad corners
    max_evaluations: int = 200


@dataclass(frozen=True)
class HandEyeView:
    """One capture: the hand pose the robot reported and the board seen by the camera."""

    T_base_hand: np.ndarray
    detection: BoardDetection


@dataclass
class HandEyeResult:
    """X and Y of the module docstring, with how well they explain every view."""

    mode: HandEyeMode
    X: np.ndarray  # T_hand_camera (eye_in_hand) or T_base_camera (eye_to_hand)
    Y: np.ndarray  # T_base_board (eye_in_hand) or T_hand_board (eye_to_hand)
    intrinsics: CameraIntrinsics  # as refined jointly with X and Y
    rms_px: float
    view_rms_px: dict[int, float]
    view_translation_mm: dict[int, float]  # predicted vs PnP board position, per view
    view_rotation_deg: dict[int, float]
    outlier_views: dict[int, str] = field(default_factory=dict)
    methods: dict[str, np.ndarray] = field(default_factory=dict)  # OpenCV's X per method
    method_rms_px: dict[str, float] = field(default_factory=dict)
    initial_method: str = ""

    @property
    def translation_residual_mm(self) -> float:
        return float(np.median(list(self.view_translation_mm.values())))

    @property
    def rotation_residual_deg(self) -> float:
        return float(np.median(list(self.view_rotation_deg.values())))

    def summary(self) -> dict:
        return {
            "mode": self.mode,
            "rms_px": self.rms_px,
            "translation_residual_mm": self.translation_residual_mm,
            "rotation_residual_deg": self.rotation_residual_deg,
            "views_used": len(self.view_rms_px),
            "outlier_views": {str(k): v for k, v in self.outlier_views.items()},
            "initial_method": self.initial_method,
            "method_rms_px": self.method_rms_px,
        }


def motion_matrices(views: Sequence[HandEyeView], mode: HandEyeMode) -> list[np.ndarray]:
    """M_i of the module docstring."""
    if mode not in HAND_EYE_MODES:
        raise ValueError(f"hand-eye mode {mode!r} must be one of {HAND_EYE_MODES}")
    if mode == "eye_in_hand":
        return [invert_transform(v.T_base_hand) for v in views]
    return [np.asarray(v.T_base_hand, dtype=np.float64) for v in views]


def check_motion(views: Sequence[HandEyeView], *, camera: str = "camera") -> None:
    """Raise DegenerateMotionError unless the hand rotated about at least two distinct axes."""
    axes = []
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            relative = invert_transform(views[i].T_base_hand) @ views[j].T_base_hand
            rotvec = rotvec_from_mat(relative[:3, :3])
            if np.degrees(np.linalg.norm(rotvec)) > MIN_ROTATION_DEG:
                axes.append(rotvec / np.linalg.norm(rotvec))
    if not axes:
        raise DegenerateMotionError(
            f"camera {camera!r}: the hand only translated between views (no rotation over "
            f"{MIN_ROTATION_DEG} deg); hand-eye needs the hand tilted about two or more axes"
        )
    singular = np.linalg.svd(np.asarray(axes), compute_uv=False)
    if len(singular) < 2 or singular[1] < 0.15 * singular[0]:
        raise DegenerateMotionError(
            f"camera {camera!r}: the hand rotated about one axis only; the hand-eye transform "
            "is not determined along it. Tilt the hand about two or more different axes"
        )


def solve_hand_eye(
    views: Sequence[HandEyeView],
    intrinsics: CameraIntrinsics,
    mode: HandEyeMode,
    *,
    camera: str = "camera",
    outlier_px: float = 2.0,
    options: RefineOptions | None = None,
) -> HandEyeResult:
    """X and Y from ``views``: best of OpenCV's methods, then the joint refinement of
    ``_refine`` (``options``; the refined intrinsics are the result's ``intrinsics``).

    Views whose reprojection error exceeds ``outlier_px`` and three times the median are
    flagged and the solve repeated without them.
    """
    if len(views) < MIN_HAND_EYE_VIEWS:
        raise CalibrationInputError(
            f"camera {camera!r}: {len(views)} hand-eye views, need at least "
            f"{MIN_HAND_EYE_VIEWS} (15-25 recommended); capture more robot poses"
        )
    check_motion(views, camera=camera)
    board_in_camera = [estimate_board_pose(v.detection, intrinsics) for v in views]
    motions = motion_matrices(views, mode)
    methods = _opencv_solutions(views, board_in_camera, mode)
    scored = {}
    for name, X in methods.items():
        Y = _fit_board(X, motions, board_in_camera)
        scored[name] = (_view_rms(X, Y, motions, views, intrinsics), X, Y)
    method_rms = {
        name: float(np.sqrt(np.mean(np.square(list(s[0].values()))))) for name, s in scored.items()
    }
    initial = min(method_rms, key=method_rms.get)
    _, X, Y = scored[initial]
    kept = list(range(len(views)))
    outliers: dict[int, str] = {}
    options = options or RefineOptions()
    # Outliers are found with the hand poses taken as exact (fast, and a bad view cannot
    # hide in its own pose correction); the final bundle then corrects the poses.
    exact_poses = replace(options, robot_pose_std_mm=0.0, robot_pose_std_deg=0.0)
    refined = intrinsics
    for _ in range(3):
        X, Y, refined = _refine(X, Y, [views[i] for i in kept], mode, intrinsics, exact_poses)
        rms = _view_rms(X, Y, motions, views, refined)
        median = float(np.median([rms[i] for i in kept]))
        new = {
            i: f"reprojection {rms[i]:.2f} px against a median of {median:.2f} px"
            for i in kept
            if rms[i] > max(outlier_px, 3.0 * median)
        }
        if not new or len(kept) - len(new) < MIN_HAND_EYE_VIEWS:
            break
        outliers.update(new)
        kept = [i for i in kept if i not in new]
        logger.info("camera %s: hand-eye outlier views %s", camera, sorted(new))
    if options != exact_poses:
        X, Y, refined = _refine(X, Y, [views[i] for i in kept], mode, refined, options)
        rms = _view_rms(X, Y, motions, views, refined)
    translation_mm, rotation_deg = {}, {}
    board_in_camera = [estimate_board_pose(v.detection, refined) for v in views]
    for i in kept:
        predicted = invert_transform(X) @ motions[i] @ Y
        t_m, r_rad = transform_error(predicted, board_in_camera[i])
        translation_mm[i], rotation_deg[i] = 1000.0 * t_m, float(np.degrees(r_rad))
    return HandEyeResult(
        mode=mode,
        X=X,
        Y=Y,
        intrinsics=refined,
        rms_px=float(np.sqrt(np.mean([rms[i] ** 2 for i in kept]))),
        view_rms_px={i: rms[i] for i in kept},
        view_translation_mm=translation_mm,
        view_rotation_deg=rotation_deg,
        outlier_views=outliers,
        methods=methods,
        method_rms_px=method_rms,
        initial_method=initial,
    )


def predict_views(
    result: HandEyeResult, views: Sequence[HandEyeView], intrinsics: CameraIntrinsics
) -> tuple[float, float, float]:
    """How well ``result`` predicts other views: (RMS px, median mm, median deg)."""
    motions = motion_matrices(views, result.mode)
    intrinsics = result.intrinsics
    rms = _view_rms(result.X, result.Y, motions, views, intrinsics)
    errors = [
        transform_error(
            invert_transform(result.X) @ m @ result.Y, estimate_board_pose(v.detection, intrinsics)
        )
        for m, v in zip(motions, views, strict=True)
    ]
    return (
        float(np.sqrt(np.mean(np.square(list(rms.values()))))),
        1000.0 * float(np.median([e[0] for e in errors])),
        float(np.degrees(np.median([e[1] for e in errors]))),
    )


def _opencv_solutions(
    views: Sequence[HandEyeView], board_in_camera: list[np.ndarray], mode: HandEyeMode
) -> dict[str, np.ndarray]:
    hand = [
        v.T_base_hand if mode == "eye_in_hand" else invert_transform(v.T_base_hand) for v in views
    ]
    R_hand = [T[:3, :3] for T in hand]
    t_hand = [T[:3, 3].reshape(3, 1) for T in hand]
    R_board = [T[:3, :3] for T in board_in_camera]
    t_board = [T[:3, 3].reshape(3, 1) for T in board_in_camera]
    solutions = {}
    for name, flag in HAND_EYE_METHODS.items():
        R, t = cv2.calibrateHandEye(R_hand, t_hand, R_board, t_board, method=flag)
        if np.all(np.isfinite(R)) and np.all(np.isfinite(t)):
            solutions[name] = make_transform(R, t.ravel())
    if not solutions:
        raise CalibrationInputError("no OpenCV hand-eye method found a finite solution")
    return solutions


def _fit_board(X: np.ndarray, motions: list[np.ndarray], board_in_camera: list[np.ndarray]):
    """Y given X: the mean of each view's Y = M_i^-1 X T_camera_board_i."""
    return mean_transform(
        [invert_transform(m) @ X @ c for m, c in zip(motions, board_in_camera, strict=True)]
    )


def _residuals(
    X: np.ndarray,
    Y: np.ndarray,
    motions: Sequence[np.ndarray],
    views: Sequence[HandEyeView],
    intrinsics: CameraIntrinsics,
) -> list[np.ndarray]:
    X_inv = invert_transform(X)
    out = []
    for m, v in zip(motions, views, strict=True):
        points = transform_points(X_inv @ m @ Y, v.detection.object_points)
        out.append(intrinsics.project(points) - v.detection.image_points)
    return out


def _view_rms(X, Y, motions, views, intrinsics) -> dict[int, float]:
    residuals = _residuals(X, Y, motions, views, intrinsics)
    return {i: float(np.sqrt(np.mean(np.sum(r * r, axis=1)))) for i, r in enumerate(residuals)}


def _fast_inverse(T: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def _small_transform(d: np.ndarray) -> np.ndarray:
    """4x4 transform of (rotation vector, translation): Rodrigues' formula, inlined because
    the refinement evaluates it thousands of times (scipy's Rotation costs 10x more)."""
    theta = float(np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]))
    K = np.array([[0.0, -d[2], d[1]], [d[2], 0.0, -d[0]], [-d[1], d[0], 0.0]])
    if theta < 1e-12:
        R = np.eye(3) + K
    else:
        R = np.eye(3) + np.sin(theta) / theta * K + (1 - np.cos(theta)) / theta**2 * (K @ K)
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = d[3:6]
    return T


def _refine(
    X0: np.ndarray,
    Y0: np.ndarray,
    views: Sequence[HandEyeView],
    mode: HandEyeMode,
    intrinsics: CameraIntrinsics,
    options: RefineOptions,
) -> tuple[np.ndarray, np.ndarray, CameraIntrinsics]:
    """Bundle adjustment of every corner's reprojection error in every view, over X, Y, the
    intrinsics (``options.refine_intrinsics``: the robot's metric motion pins the focal
    length of a camera that sees the board small and far, where the board alone barely
    does) and a small correction of each reported hand pose, held to the robot's accuracy
    by a prior (``options.robot_pose_std_*``), so pose noise is absorbed per view instead
    of dragging the intrinsics and X along."""
    n = len(views)
    k0 = np.array([intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy,
                   *(tuple(intrinsics.distortion) + (0.0,) * 5)[:5]])  # fmt: skip
    n_k = 9 if options.refine_intrinsics else 0
    per_view = 6 if options.robot_pose_std_mm > 0 or options.robot_pose_std_deg > 0 else 0
    n_global = 12 + n_k
    pose_scale = np.concatenate([
        np.full(3, max(np.radians(options.robot_pose_std_deg), 1e-9)),
        np.full(3, max(options.robot_pose_std_mm / 1000.0, 1e-9)),
    ])  # fmt: skip
    hands = [np.asarray(v.T_base_hand, dtype=np.float64) for v in views]
    sigma = options.pixel_sigma

    def unpack(p: np.ndarray):
        X = X0 @ _small_transform(p[0:6])
        Y = Y0 @ _small_transform(p[6:12])
        k = k0 + p[12:n_global] if n_k else k0
        fx, fy, cx, cy = (float(v) for v in k[:4])
        distortion = tuple(float(v) for v in k[4:])
        refined = replace(intrinsics, fx=fx, fy=fy, cx=cx, cy=cy, distortion=distortion)
        return X, Y, refined

    object_points = np.concatenate([v.detection.object_points for v in views])
    image_points = np.concatenate([v.detection.image_points for v in views])
    owner = np.concatenate([np.full(len(v.detection), i) for i, v in enumerate(views)])
    ends = np.cumsum([2 * len(v.detection) for v in views])

    def fun(p: np.ndarray) -> np.ndarray:
        X, Y, k = unpack(p)
        X_inv = _fast_inverse(X)
        board_in_camera = np.empty((n, 4, 4))
        for i in range(n):
            hand = hands[i]
            if per_view:
                hand = hand @ _small_transform(p[n_global + 6 * i : n_global + 6 * i + 6])
            motion = _fast_inverse(hand) if mode == "eye_in_hand" else hand
            board_in_camera[i] = X_inv @ motion @ Y
        R, t = board_in_camera[owner, :3, :3], board_in_camera[owner, :3, 3]
        points = np.einsum("nij,nj->ni", R, object_points) + t
        reprojection = (k.project(points) - image_points).ravel()
        out = []
        if per_view:  # each view's corner residuals, then its pose prior (the sparsity order)
            poses = sigma * p[n_global:].reshape(n, 6) / pose_scale
            for i in range(n):
                out += [reprojection[(ends[i - 1] if i else 0) : ends[i]], poses[i]]
        else:
            out.append(reprojection)
        return np.concatenate(out)

    size = n_global + per_view * n
    sparsity = None
    if per_view:
        rows = [2 * len(v.detection) + 6 for v in views]
        sparsity = lil_matrix((sum(rows), size))
        start = 0
        for i, count in enumerate(rows):
            sparsity[start : start + count - 6, :n_global] = 1
            sparsity[start : start + count, n_global + 6 * i : n_global + 6 * i + 6] = 1
            start += count
    intrinsics_scale = [1.0, 1.0, 1.0, 1.0, 1e-3, 1e-3, 1e-4, 1e-4, 1e-3][:n_k]
    scale = np.concatenate(
        [np.full(12, 1e-3), intrinsics_scale, np.tile(pose_scale, n)[: per_view * n]]
    )
    if sparsity is None:
        solution = least_squares(
            fun, np.zeros(size), method="trf", loss=options.loss, f_scale=1.0, x_scale=scale,
            max_nfev=options.max_evaluations,
        )  # fmt: skip
    else:
        groups = group_columns(sparsity)

        def jac(p: np.ndarray) -> np.ndarray:
            # Sparse finite differences: one evaluation per column group, not per column.
            return approx_derivative(fun, p, sparsity=(sparsity, groups)).toarray()

        # Levenberg-Marquardt (MINPACK, QR): outliers are gone by now, so no robust loss is
        # needed, and it is much faster here than the trust region's SVD per iteration.
        solution = least_squares(
            fun, np.zeros(size), method="lm", jac=jac, x_scale=scale,
            max_nfev=options.max_evaluations,
        )  # fmt: skip
    return unpack(solution.x)


@dataclass(frozen=True)
class HoldoutThresholds:
    """When a calibration predicts views it was not fitted to well enough to be trusted."""

    max_rms_px: float = 2.0
    max_translation_mm: float = 5.0
    max_rotation_deg: float = 0.5


@dataclass
class HoldoutCheck:
    """A solve without every ``stride``-th view, judged on how it predicts those views."""

    held_out: list[int]
    rms_px: float
    translation_mm: float
    rotation_deg: float
    thresholds: HoldoutThresholds

    @property
    def passed(self) -> bool:
        t = self.thresholds
        return (
            self.rms_px <= t.max_rms_px
            and self.translation_mm <= t.max_translation_mm
            and self.rotation_deg <= t.max_rotation_deg
        )

    def summary(self) -> dict:
        return {
            "held_out_views": self.held_out,
            "rms_px": self.rms_px,
            "translation_mm": self.translation_mm,
            "rotation_deg": self.rotation_deg,
            "passed": self.passed,
        }


def holdout_check(
    views: Sequence[HandEyeView],
    intrinsics: CameraIntrinsics,
    mode: HandEyeMode,
    *,
    stride: int = 5,
    thresholds: HoldoutThresholds | None = None,
    camera: str = "camera",
    **solve_options: Any,
) -> HoldoutCheck:
    """Solve on all views but every ``stride``-th (from the third), predict those.
    ``solve_options`` go to ``solve_hand_eye``."""
    held_out = list(range(2, len(views), stride))
    fit = [v for i, v in enumerate(views) if i not in held_out]
    if not held_out or len(fit) < MIN_HAND_EYE_VIEWS:
        raise CalibrationInputError(
            f"camera {camera!r}: {len(views)} views are too few to keep some out for the "
            f"check (need {MIN_HAND_EYE_VIEWS + 1} or more)"
        )
    result = solve_hand_eye(fit, intrinsics, mode, camera=camera, **solve_options)
    rms, translation_mm, rotation_deg = predict_views(
        result, [views[i] for i in held_out], intrinsics
    )
    return HoldoutCheck(
        held_out, rms, translation_mm, rotation_deg, thresholds or HoldoutThresholds()
    )
