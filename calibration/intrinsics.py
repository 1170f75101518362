"""Camera intrinsics from ChArUco views: ``cv2.calibrateCamera`` on matched corners, with
per-view reprojection errors, rejection of bad views and a coverage map.

A view is rejected when its reprojection error stands out from the others (blur, a wrong
corner, a board that moved): it is dropped and the camera recalibrated, until none stands out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.detection import BoardDetection
from robot_learning.errors import InputError
from robot_learning.hardware.camera import CameraIntrinsics

logger = logging.getLogger(__name__)

MIN_INTRINSICS_VIEWS = 6
COVERAGE_GRID = (6, 8)  # rows, columns of the coverage map


class CalibrationInputError(InputError):
    """The views cannot give a trustworthy result (too few, degenerate, mismatched)."""


@dataclass
class IntrinsicsResult:
    """Intrinsics, their quality and which views made them."""

    intrinsics: CameraIntrinsics
    rms_px: float
    view_errors_px: dict[int, float]  # per kept view (index into the input)
    rejected_views: dict[int, str] = field(default_factory=dict)  # index -> why
    coverage: np.ndarray = field(default_factory=lambda: np.zeros(COVERAGE_GRID, dtype=int))
    std: np.ndarray = field(default_factory=lambda: np.full(9, np.inf))  # fx fy cx cy k1..k3

    @property
    def coverage_fraction(self) -> float:
        """Share of the image's grid cells in which at least one corner was seen."""
        return float((self.coverage > 0).mean())

    def summary(self) -> dict:
        i = self.intrinsics
        return {
            "fx": i.fx, "fy": i.fy, "cx": i.cx, "cy": i.cy,
            "distortion": list(i.distortion),
            "rms_px": self.rms_px,
            "views_used": len(self.view_errors_px),
            "views_rejected": {str(k): v for k, v in self.rejected_views.items()},
            "coverage_fraction": self.coverage_fraction,
            "std_fx_fy_cx_cy": [float(v) for v in self.std[:4]],
        }  # fmt: skip


def coverage_map(detections: Sequence[BoardDetection], image_size: tuple[int, int]) -> np.ndarray:
    """Corner counts on a COVERAGE_GRID over the image: where the calibration has evidence."""
    rows, cols = COVERAGE_GRID
    height, width = image_size
    grid = np.zeros(COVERAGE_GRID, dtype=int)
    for detection in detections:
        u, v = detection.image_points[:, 0], detection.image_points[:, 1]
        r = np.clip((v / height * rows).astype(int), 0, rows - 1)
        c = np.clip((u / width * cols).astype(int), 0, cols - 1)
        np.add.at(grid, (r, c), 1)
    return grid


def calibrate_intrinsics(
    detections: Sequence[BoardDetection],
    *,
    max_view_error_px: float = 1.0,
    outlier_factor: float = 3.0,
    camera: str = "camera",
) -> IntrinsicsResult:
    """Pinhole + 5-coefficient distortion from ``detections`` (all of one camera).

    A view is rejected when its RMS error exceeds both ``max_view_error_px`` and
    ``outlier_factor`` times the median view error.
    """
    if not detections:
        raise CalibrationInputError(f"camera {camera!r}: no views with the board to calibrate")
    sizes = {d.image_size for d in detections}
    if len(sizes) != 1:
        raise CalibrationInputError(f"camera {camera!r}: views of different sizes {sizes}")
    image_size = sizes.pop()
    kept = list(range(len(detections)))
    rejected: dict[int, str] = {}
    while True:
        if len(kept) < MIN_INTRINSICS_VIEWS:
            raise CalibrationInputError(
                f"camera {camera!r}: {len(kept)} usable views of the board "
                f"({len(rejected)} rejected), need at least {MIN_INTRINSICS_VIEWS}; capture "
                "more views, tilted and spread over the whole image"
            )
        rms, intrinsics, errors, std = _calibrate(detections, kept, image_size)
        median = float(np.median(list(errors.values())))
        worst = max(errors, key=errors.get)
        if errors[worst] <= max(max_view_error_px, outlier_factor * median):
            break
        rejected[worst] = (
            f"reprojection error {errors[worst]:.2f} px against a median of {median:.2f} px"
        )
        logger.info("camera %s: rejecting view %d (%s)", camera, worst, rejected[worst])
        kept.remove(worst)
    result = IntrinsicsResult(
        intrinsics=intrinsics,
        rms_px=rms,
        view_errors_px=errors,
        rejected_views=rejected,
        coverage=coverage_map([detections[i] for i in kept], image_size),
        std=std,
    )
    if result.coverage_fraction < 0.5:
        logger.warning(
            "camera %s: corners cover only %.0f%% of the image; the distortion estimate is "
            "weak near the edges, add views with the board in the corners",
            camera,
            100 * result.coverage_fraction,
        )
    return result


def _calibrate(
    detections: Sequence[BoardDetection], kept: list[int], image_size: tuple[int, int]
) -> tuple[float, CameraIntrinsics, dict[int, float], np.ndarray]:
    height, width = image_size
    object_points = [detections[i].object_points.astype(np.float32) for i in kept]
    image_points = [detections[i].image_points.astype(np.float32) for i in kept]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    rms, K, dist, _, _, std, _, per_view = cv2.calibrateCameraExtended(
        object_points, image_points, (width, height), None, None, criteria=criteria
    )
    intrinsics = CameraIntrinsics(
        width=width,
        height=height,
        fx=float(K[0, 0]),
        fy=float(K[1, 1]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        distortion=tuple(float(v) for v in dist.ravel()[:5]),
    )
    errors = {i: float(e) for i, e in zip(kept, per_view.ravel(), strict=True)}
    return float(rms), intrinsics, errors, np.maximum(std.ravel()[:9], 1e-9)


def verify_intrinsics(
    intrinsics: CameraIntrinsics, detections: Sequence[BoardDetection]
) -> dict[int, float]:
    """Per-view RMS reprojection error (px) of given intrinsics (e.g. a RealSense's factory
    values) on board views, each view's board pose fitted by PnP. Values near the
    calibration's own view errors confirm them; a pixel or more says recalibrate."""
    from calibration.detection import estimate_board_pose
    from robot_learning.geometry import transform_points

    errors = {}
    for i, detection in enumerate(detections):
        T = estimate_board_pose(detection, intrinsics)
        residual = intrinsics.project(transform_points(T, detection.object_points))
        residual -= detection.image_points
        errors[i] = float(np.sqrt(np.mean(np.sum(residual**2, axis=1))))
    return errors
