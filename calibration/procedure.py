"""The calibration of one camera from captured views: intrinsics, then hand-eye, then the
held-out-view check; and of a workcell: every camera plus camera-to-camera extrinsics.

Views come from any source (the simulator, a robot visiting poses, a person holding the
board); a ``CapturedView`` is one image's detection with the hand pose at that instant.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from calibration.calibration_file import CameraCalibration, Mount, WorkcellCalibration
from calibration.detection import BoardDetection
from calibration.extrinsics import PairExtrinsics, check_against_handeye, pair_extrinsics
from calibration.handeye import (
    HandEyeResult,
    HandEyeView,
    HoldoutCheck,
    RefineOptions,
    holdout_check,
    solve_hand_eye,
)
from calibration.intrinsics import IntrinsicsResult, calibrate_intrinsics
from robot_learning.charuco_board import CharucoBoardSpec

logger = logging.getLogger(__name__)

# How accurately the arm reports its hand pose (mm, deg per axis); a Franka repeats to 0.1 mm.
ROBOT_POSE_STD = (0.1, 0.01)


@dataclass(frozen=True)
class CapturedView:
    """Capture ``index`` (shared by all cameras of one pose): board seen, hand pose."""

    index: int
    T_base_hand: np.ndarray
    detection: BoardDetection


@dataclass
class CameraReport:
    """Everything computed for one camera (the file keeps the summary)."""

    calibration: CameraCalibration
    intrinsics: IntrinsicsResult
    hand_eye: HandEyeResult
    holdout: HoldoutCheck | None
    views: dict[int, BoardDetection] = field(default_factory=dict)


def calibrate_camera(
    name: str,
    views: Sequence[CapturedView],
    *,
    mount: Mount,
    serial: str = "",
    holdout: bool = True,
    robot_pose_std: tuple[float, float] = ROBOT_POSE_STD,
) -> CameraReport:
    """Intrinsics, hand-eye (``fixed``: eye-to-hand, ``hand``: eye-in-hand) and the check.

    The intrinsics saved are those refined jointly with the hand-eye transform."""
    intrinsics = calibrate_intrinsics([v.detection for v in views], camera=name)
    kept = [v for i, v in enumerate(views) if i in intrinsics.view_errors_px]
    hand_eye_views = [HandEyeView(v.T_base_hand, v.detection) for v in kept]
    mode = "eye_to_hand" if mount == "fixed" else "eye_in_hand"
    pixel_sigma = max(intrinsics.rms_px, 0.05)
    options = RefineOptions(
        pixel_sigma=pixel_sigma,
        robot_pose_std_mm=robot_pose_std[0],
        robot_pose_std_deg=robot_pose_std[1],
    )
    result = solve_hand_eye(
        hand_eye_views, intrinsics.intrinsics, mode, camera=name, options=options
    )
    check = (
        holdout_check(hand_eye_views, intrinsics.intrinsics, mode, camera=name, options=options)
        if holdout
        else None
    )
    if check is not None and not check.passed:
        logger.warning("camera %s failed the held-out-view check: %s", name, check.summary())
    calibration = CameraCalibration(
        name=name,
        serial=serial or name,
        mount=mount,
        intrinsics=result.intrinsics,
        pose=result.X,
        residuals={
            "intrinsics": intrinsics.summary(),
            "hand_eye": result.summary(),
            "holdout": None if check is None else check.summary(),
        },
        holdout_passed=check is None or check.passed,
    )
    return CameraReport(
        calibration, intrinsics, result, check, {v.index: v.detection for v in kept}
    )


def calibrate_pairs(reports: Mapping[str, CameraReport]) -> dict[str, PairExtrinsics]:
    """Camera-to-camera extrinsics of every pair of fixed cameras that shared views."""
    fixed = [n for n, r in reports.items() if r.calibration.mount == "fixed"]
    pairs = {}
    for i, a in enumerate(fixed):
        for b in fixed[i + 1 :]:
            ra, rb = reports[a], reports[b]
            pair = pair_extrinsics(
                a, b, ra.views, rb.views, ra.calibration.intrinsics, rb.calibration.intrinsics
            )
            check_against_handeye(pair, ra.calibration.pose, rb.calibration.pose)
            pairs[f"{a}-{b}"] = pair
    return pairs


def workcell_calibration(
    workcell: str,
    reports: Mapping[str, CameraReport],
    pairs: Mapping[str, PairExtrinsics],
    board: CharucoBoardSpec | Mapping[str, CharucoBoardSpec],
) -> WorkcellCalibration:
    boards = board if isinstance(board, Mapping) else {"board": board}
    return WorkcellCalibration(
        workcell=workcell,
        cameras={n: r.calibration for n, r in reports.items()},
        board={k: b.to_dict() for k, b in boards.items()},
        camera_pairs={k: p.summary() for k, p in pairs.items()},
    )
