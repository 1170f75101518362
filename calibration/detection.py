"""ChArUco board detection with OpenCV's current API (``CharucoDetector.detectBoard``,
``board.matchImagePoints``) and the board's pose in one view.

A ``BoardDetection`` is what every solver consumes: the corner ids, their sub-pixel image
positions and the matching board-frame points. Errors say what was seen and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from robot_learning.charuco_board import CharucoBoardSpec
from robot_learning.errors import InputError
from robot_learning.geometry import transform_from_rotvec
from robot_learning.hardware.camera import CameraIntrinsics

MIN_CORNERS = 6  # fewer, or all on one line, and the board pose is not determined
# Tried, after a miss only, to tell "another board" from "no board".
COMMON_DICTIONARIES = ("DICT_4X4_50", "DICT_5X5_100", "DICT_6X6_250", "DICT_7X7_1000",
                       "DICT_APRILTAG_36h11", "DICT_ARUCO_ORIGINAL")  # fmt: skip


class BoardNotFoundError(InputError):
    """No usable board in an image (not visible, too far, or another board definition)."""


@dataclass(frozen=True)
class BoardDetection:
    """ChArUco corners found in one image."""

    ids: np.ndarray  # (N,) int corner ids
    image_points: np.ndarray  # (N, 2) float64 pixels
    object_points: np.ndarray  # (N, 3) float64 board frame, metres
    image_size: tuple[int, int]  # (height, width)

    def __len__(self) -> int:
        return len(self.ids)

    def is_degenerate(self) -> bool:
        """All corners on one line (one row or column of the board): no pose from this."""
        centred = self.object_points[:, :2] - self.object_points[:, :2].mean(axis=0)
        singular = np.linalg.svd(centred, compute_uv=False)
        return len(self) < MIN_CORNERS or singular[1] < 1e-3 * max(singular[0], 1e-12)


class BoardDetector:
    """Finds one ChArUco board in RGB or grey images, with sub-pixel corners."""

    def __init__(self, board: CharucoBoardSpec) -> None:
        self.board = board
        self._board = board.opencv_board()
        detector_params = cv2.aruco.DetectorParameters()
        detector_params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        charuco_params = cv2.aruco.CharucoParameters()
        charuco_params.tryRefineMarkers = True
        self._detector = cv2.aruco.CharucoDetector(self._board, charuco_params, detector_params)
        self._marker_ids = set(int(i) for i in np.asarray(self._board.getIds()).ravel())

    def detect(self, image: np.ndarray, *, where: str = "image") -> BoardDetection:
        """The board's corners in ``image``; ``where`` names the image in errors."""
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        corners, ids, marker_corners, marker_ids = self._detector.detectBoard(grey)
        if ids is None or len(ids) < MIN_CORNERS:
            raise BoardNotFoundError(self._explain_miss(where, grey, ids, marker_ids))
        corners = cv2.cornerSubPix(
            grey,
            corners.astype(np.float32),
            (3, 3),
            (-1, -1),
            (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-3),
        )
        object_points, image_points = self._board.matchImagePoints(corners, ids)
        detection = BoardDetection(
            ids=ids.ravel().astype(int),
            image_points=image_points.reshape(-1, 2).astype(np.float64),
            object_points=object_points.reshape(-1, 3).astype(np.float64),
            image_size=(int(grey.shape[0]), int(grey.shape[1])),
        )
        if detection.is_degenerate():
            raise BoardNotFoundError(
                f"{where}: the {len(detection)} board corners seen lie on one line; "
                "show more of the board"
            )
        return detection

    def _explain_miss(self, where: str, grey: np.ndarray, ids: Any, marker_ids: Any) -> str:
        seen = set() if marker_ids is None else set(int(i) for i in np.asarray(marker_ids).ravel())
        corners = 0 if ids is None else len(ids)
        b = self.board
        if not seen:
            for name in COMMON_DICTIONARIES:
                if name == b.dictionary:
                    continue
                dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))
                _, other_ids, _ = cv2.aruco.ArucoDetector(dictionary).detectMarkers(grey)
                if other_ids is not None and len(other_ids) >= 4:
                    return (
                        f"{where}: {len(other_ids)} markers of dictionary {name} were seen, but "
                        f"the board definition says {b.dictionary}; set the dictionary of the "
                        "printed board"
                    )
        if seen and not seen & self._marker_ids:
            return (
                f"{where}: ArUco markers {sorted(seen)[:8]} were seen but none belongs to the "
                f"board definition ({b.squares_x}x{b.squares_y} squares, {b.dictionary}, ids "
                f"{min(self._marker_ids)}-{max(self._marker_ids)}); check the board settings "
                "against the printed board"
            )
        if len(seen) >= 4 and corners < MIN_CORNERS:
            return (
                f"{where}: {len(seen)} markers of the board were seen but only {corners} "
                f"chessboard corners were found; check squares_x/squares_y and the square and "
                f"marker sizes ({b.square_m} m, {b.marker_m} m) against the printed board"
            )
        return (
            f"{where}: board not visible ({len(seen)} markers, {corners} corners; need "
            f"{MIN_CORNERS}); move the board into view, closer, or light it evenly"
        )


def estimate_board_pose(detection: BoardDetection, intrinsics: CameraIntrinsics) -> np.ndarray:
    """T_camera_board (4x4) of one view: planar PnP (IPPE) refined by Levenberg-Marquardt."""
    K = intrinsics.matrix
    dist = np.asarray(intrinsics.distortion, dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(
        detection.object_points, detection.image_points, K, dist, flags=cv2.SOLVEPNP_IPPE
    )
    if not ok:
        raise BoardNotFoundError("solvePnP found no board pose for a detection")
    rvec, tvec = cv2.solvePnPRefineLM(
        detection.object_points, detection.image_points, K, dist, rvec, tvec
    )
    return transform_from_rotvec(rvec.ravel(), tvec.ravel())
