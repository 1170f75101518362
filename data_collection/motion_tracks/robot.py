"""Robot motion tracks: the gripper's keypoints from the recorded TCP pose and gripper width.

The hand's geometry (finger_a / finger_b at the pads, half the width off the centre line
along the TCP's y; base between the finger roots) lives in one place,
``robot_learning.track_geometry``; this module applies it to whole episodes.
"""

from __future__ import annotations

import numpy as np

from robot_learning.geometry import batch_matrix_from_quat
from robot_learning.track_geometry import BASE_Z_M, FINGERTIP_Z_M, GRIPPER_MAX_WIDTH_M

GRASP_COMMAND_THRESHOLD = 0.5  # action's gripper entry: 1 = close


def gripper_points(ee_poses: np.ndarray, gripper_width_m: np.ndarray) -> np.ndarray:
    """(T, 7) TCP poses (position + quaternion xyzw) and (T,) widths -> (T, 3, 3) points:
    ``track_geometry.gripper_keypoints`` over a whole episode at once."""
    ee_poses = np.asarray(ee_poses, dtype=np.float64)
    width = np.clip(
        np.asarray(gripper_width_m, dtype=np.float64).reshape(-1), 0.0, GRIPPER_MAX_WIDTH_M
    )
    local = np.zeros((len(ee_poses), 3, 3))
    local[:, 0, 1], local[:, 1, 1] = 0.5 * width, -0.5 * width
    local[:, :2, 2] = FINGERTIP_Z_M
    local[:, 2, 2] = BASE_Z_M
    rotations = np.asarray(batch_matrix_from_quat(ee_poses[:, 3:7]))
    return np.einsum("tij,tkj->tki", rotations, local) + ee_poses[:, None, :3]


def gripper_grasp(actions: np.ndarray) -> np.ndarray:
    """(T,) 1.0 where the gripper was commanded closed (closing or holding), else 0.0."""
    return (np.asarray(actions)[:, 7] > GRASP_COMMAND_THRESHOLD).astype(np.float32)
