"""Robot motion tracks: the gripper's keypoints from the recorded TCP pose and gripper width.

Points (``keys.TRACK_POINTS`` order), in the TCP frame of the FR3 hand (its fingers slide
along the TCP's y axis, their pads centred on the TCP's z = 0 plane):

- ``finger_a``: the left finger (+y) at its pad, (0, +w/2, 0);
- ``finger_b``: the right finger (-y) at its pad, (0, -w/2, 0);
- ``base``: the gripper centre between the finger roots, (0, 0, -FINGER_LENGTH_M).

w is the recorded gripper width. The same geometry holds for the simulated and the real
hand (franky-sim models the real one); a different gripper changes these three constants.
"""

from __future__ import annotations

import numpy as np

from robot_learning.geometry import batch_matrix_from_quat

FINGER_LENGTH_M = 0.045  # finger root (hand z 0.0584) to pad centre (the TCP, hand z 0.1034)
GRASP_COMMAND_THRESHOLD = 0.5  # action's gripper entry: 1 = close


def gripper_points(ee_poses: np.ndarray, gripper_width_m: np.ndarray) -> np.ndarray:
    """(T, 7) TCP poses (position + quaternion xyzw) and (T,) widths -> (T, 3, 3) points."""
    ee_poses = np.asarray(ee_poses, dtype=np.float64)
    half = 0.5 * np.asarray(gripper_width_m, dtype=np.float64).reshape(-1)
    local = np.zeros((len(ee_poses), 3, 3))
    local[:, 0, 1] = half
    local[:, 1, 1] = -half
    local[:, 2, 2] = -FINGER_LENGTH_M
    rotations = np.asarray(batch_matrix_from_quat(ee_poses[:, 3:7]))
    return np.einsum("tij,tkj->tki", rotations, local) + ee_poses[:, None, :3]


def gripper_grasp(actions: np.ndarray) -> np.ndarray:
    """(T,) 1.0 where the gripper was commanded closed (closing or holding), else 0.0."""
    return (np.asarray(actions)[:, 7] > GRASP_COMMAND_THRESHOLD).astype(np.float32)
