"""Synthetic views for the solvers: board corners projected through a known camera (with
lens distortion) from known poses, plus pixel noise. The numbers the solvers must recover
are the ones used here; no rendering, so these tests are fast."""

from __future__ import annotations

import numpy as np

from calibration.detection import BoardDetection
from calibration.handeye import HandEyeView
from calibration.poses import orbit_poses
from robot_learning.charuco_board import CharucoBoardSpec
from robot_learning.geometry import (
    TOP_DOWN_MAT,
    invert_transform,
    make_transform,
    transform_from_rotvec,
    transform_points,
)
from robot_learning.hardware.camera import CameraIntrinsics

BOARD = CharucoBoardSpec()
CAMERA = CameraIntrinsics(width=640, height=480, fx=600.0, fy=602.0, cx=322.0, cy=238.0,
                          distortion=(0.1, -0.05, 0.001, -0.0005, 0.0))  # fmt: skip
TRUE_HAND_CAMERA = transform_from_rotvec(
    np.array([0.02, -0.45, 1.55]), np.array([0.07, 0.01, -0.07])
)
TRUE_BASE_BOARD = make_transform(np.diag([1.0, -1.0, -1.0]), np.array([0.4, -0.12, 0.0]))


def detection(T_camera_board: np.ndarray, rng: np.random.Generator, noise_px: float = 0.1):
    """The board corners that land inside the image, as a detector would return them."""
    corners = BOARD.corners_board()
    pixels = CAMERA.project(transform_points(T_camera_board, corners))
    pixels += rng.normal(0.0, noise_px, pixels.shape)
    inside = (pixels[:, 0] > 0) & (pixels[:, 0] < 639) & (pixels[:, 1] > 0) & (pixels[:, 1] < 479)
    return BoardDetection(
        ids=np.flatnonzero(inside), image_points=pixels[inside], object_points=corners[inside],
        image_size=(480, 640),
    )  # fmt: skip


def eye_in_hand_views(count: int = 15, seed: int = 0, noise_px: float = 0.1) -> list[HandEyeView]:
    """A wrist camera looking at a table board while the hand orbits it."""
    rng = np.random.default_rng(seed)
    centre = transform_points(TRUE_BASE_BOARD, [[0.1225, 0.0875, 0.0]])[0]
    axis = TOP_DOWN_MAT @ TRUE_HAND_CAMERA[:3, 2]
    start = make_transform(
        TOP_DOWN_MAT, centre - 0.35 * axis - TOP_DOWN_MAT @ TRUE_HAND_CAMERA[:3, 3]
    )
    views = []
    for T_base_hand in orbit_poses(start, centre, axis, count, rng=rng, spread_m=0.05):
        T_camera_board = invert_transform(T_base_hand @ TRUE_HAND_CAMERA) @ TRUE_BASE_BOARD
        views.append(HandEyeView(T_base_hand, detection(T_camera_board, rng, noise_px)))
    return views
