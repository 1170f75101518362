"""Simulator ground truth for calibration: the ChArUco boards render where their poses say,
through the lens the camera reports; cameras have their own sizes; the wrist camera's
hand-to-camera transform is exposed and stays fixed while the hand moves."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.geometry import invert_transform, transform_error, transform_points
from robot_learning.hardware.robot import CartesianTarget
from robot_learning.sim import scene
from robot_learning.sim.camera import REALISTIC_LENS
from robot_learning.sim.workcell import Workcell

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def cell():
    lenses = {"wrist": REALISTIC_LENS, "front": REALISTIC_LENS}
    with Workcell(task="empty", cameras=("wrist", "front"), image_size=(480, 640),
                  image_sizes={"wrist": (360, 480)}, boards=("gripper", "table"),
                  lenses=lenses) as workcell:  # fmt: skip
        yield workcell


def detected_vs_true_px(cell: Workcell, camera: str, mount: str) -> tuple[int, float]:
    board = scene.BOARD_MOUNTS[mount].board
    image = cell.render([camera])[camera]
    detector = cv2.aruco.CharucoDetector(board.opencv_board())
    corners, ids, _, _ = detector.detectBoard(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    assert ids is not None and len(ids) >= 6, f"{camera} does not see the {mount} board"
    T_base_board = cell.true_board_pose(mount)
    if mount == "gripper":
        T_base_board = cell.T_base_hand() @ T_base_board
    T_camera_board = invert_transform(cell.true_T_base_camera(camera)) @ T_base_board
    points = transform_points(T_camera_board, board.corners_board()[ids.ravel()])
    error = np.linalg.norm(
        cell.camera(camera).intrinsics.project(points) - corners.reshape(-1, 2), axis=1
    )
    return len(ids), float(error.mean())


def test_boards_render_where_the_truth_says_through_the_lens(cell):
    count, error_px = detected_vs_true_px(cell, "wrist", "table")
    assert count >= 12 and error_px < 0.3
    count, error_px = detected_vs_true_px(cell, "front", "gripper")
    assert count >= 6 and error_px < 0.4


def test_cameras_have_their_own_image_sizes(cell):
    images = cell.render(["wrist", "front"])
    assert images["wrist"].shape == (360, 480, 3) and images["front"].shape == (480, 640, 3)
    wrist = cell.camera("wrist").intrinsics
    assert (wrist.width, wrist.height, wrist.cx) == (480, 360, 239.5)
    assert wrist.distortion == REALISTIC_LENS.distortion


def test_hand_to_camera_is_fixed_while_the_hand_moves(cell):
    before = cell.true_T_hand_camera("wrist")
    board_before = cell.true_board_pose("gripper")
    home = cell.home_target()
    target = CartesianTarget(home.position + [0.05, -0.08, -0.05], home.quaternion)
    for _ in range(100):
        cell.step(target)
    assert np.linalg.norm(cell.T_base_hand()[:3, 3] - home.position) > 0.05
    t_m, r_rad = transform_error(cell.true_T_hand_camera("wrist"), before)
    assert t_m < 1e-6 and r_rad < 1e-5
    t_m, r_rad = transform_error(cell.true_board_pose("gripper"), board_before)
    assert t_m < 1e-6 and r_rad < 1e-5
    nominal = scene.nominal_camera_pose(scene.WRIST_CAMERA)  # CAD value; the truth is perturbed
    t_m, r_rad = transform_error(before, nominal)
    assert 0 < t_m < 0.02 and r_rad < 0.05
    with pytest.raises(ValueError, match="fixed in the world"):
        cell.true_T_hand_camera("front")
