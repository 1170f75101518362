"""Camera-to-camera extrinsics from views in which two cameras see the board at once, and
their consistency with the cameras' hand-eye results.

For each shared view, ``T_a_b = T_a_board @ T_b_board^-1``; the mean starts one least-squares
refinement over T_a_b and every view's board pose, on the reprojection error in both cameras.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from calibration.detection import BoardDetection, estimate_board_pose
from calibration.intrinsics import CalibrationInputError
from robot_learning.geometry import (
    invert_transform,
    make_transform,
    mat_from_rotvec,
    mean_transform,
    transform_error,
    transform_points,
)
from robot_learning.hardware.camera import CameraIntrinsics

MIN_SHARED_VIEWS = 3


@dataclass
class PairExtrinsics:
    """T_a_b: camera b's optical frame in camera a's, and how well it fits."""

    camera_a: str
    camera_b: str
    T_a_b: np.ndarray
    rms_px: float
    shared_views: int
    # Against the hand-eye results (T_base_a^-1 T_base_b), when both cameras have one:
    handeye_translation_mm: float | None = None
    handeye_rotation_deg: float | None = None

    def summary(self) -> dict:
        return {
            "T_a_b": self.T_a_b.tolist(),
            "rms_px": self.rms_px,
            "shared_views": self.shared_views,
            "handeye_translation_mm": self.handeye_translation_mm,
            "handeye_rotation_deg": self.handeye_rotation_deg,
        }


def pair_extrinsics(
    camera_a: str,
    camera_b: str,
    views_a: Mapping[int, BoardDetection],
    views_b: Mapping[int, BoardDetection],
    intrinsics_a: CameraIntrinsics,
    intrinsics_b: CameraIntrinsics,
) -> PairExtrinsics:
    """T_a_b from the views (keyed by capture index) that both cameras saw the board in."""
    shared = sorted(set(views_a) & set(views_b))
    if len(shared) < MIN_SHARED_VIEWS:
        raise CalibrationInputError(
            f"cameras {camera_a!r} and {camera_b!r} saw the board together in {len(shared)} "
            f"views, need {MIN_SHARED_VIEWS}; hold the board where both cameras see it"
        )
    in_a = [estimate_board_pose(views_a[i], intrinsics_a) for i in shared]
    in_b = [estimate_board_pose(views_b[i], intrinsics_b) for i in shared]
    T0 = mean_transform([a @ invert_transform(b) for a, b in zip(in_a, in_b, strict=True)])

    def unpack(p: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        T_a_b = T0 @ make_transform(mat_from_rotvec(p[:3]), p[3:6])
        boards = [
            in_a[k]
            @ make_transform(mat_from_rotvec(p[6 + 6 * k : 9 + 6 * k]), p[9 + 6 * k : 12 + 6 * k])
            for k in range(len(shared))
        ]
        return T_a_b, boards

    def fun(p: np.ndarray) -> np.ndarray:
        T_a_b, boards = unpack(p)
        T_b_a = invert_transform(T_a_b)
        out = []
        for k, i in enumerate(shared):
            da, db = views_a[i], views_b[i]
            out.append(
                intrinsics_a.project(transform_points(boards[k], da.object_points))
                - da.image_points
            )
            out.append(
                intrinsics_b.project(transform_points(T_b_a @ boards[k], db.object_points))
                - db.image_points
            )
        return np.concatenate([r.ravel() for r in out])

    solution = least_squares(fun, np.zeros(6 + 6 * len(shared)), loss="soft_l1", f_scale=1.0)
    T_a_b, _ = unpack(solution.x)
    residual = solution.fun.reshape(-1, 2)
    return PairExtrinsics(
        camera_a=camera_a,
        camera_b=camera_b,
        T_a_b=T_a_b,
        rms_px=float(np.sqrt(np.mean(np.sum(residual**2, axis=1)))),
        shared_views=len(shared),
    )


def check_against_handeye(pair: PairExtrinsics, T_base_a: np.ndarray, T_base_b: np.ndarray) -> None:
    """Fill in how far T_a_b is from what the two hand-eye results imply."""
    t_m, r_rad = transform_error(pair.T_a_b, invert_transform(T_base_a) @ T_base_b)
    pair.handeye_translation_mm = 1000.0 * t_m
    pair.handeye_rotation_deg = float(np.degrees(r_rad))
