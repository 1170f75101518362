"""Rotation helpers for the simulator; quaternions are (x, y, z, w) like the Robot interface.

Only the MuJoCo-backed matrix/quaternion conversions live here; the pure-numpy helpers
(yaw_mat, yaw_of_mat, wrap_angle, quaternion products) live in robot_learning.geometry.
"""

from __future__ import annotations

import mujoco
import numpy as np

# TCP pointing straight down, hand x along base x: the real arm's "ready" orientation.
TOP_DOWN_MAT = np.diag([1.0, -1.0, -1.0])
TOP_DOWN_QUAT_XYZW = np.array([1.0, 0.0, 0.0, 0.0])


def quat_xyzw_from_mat(mat: np.ndarray) -> np.ndarray:
    wxyz = np.empty(4)
    mujoco.mju_mat2Quat(wxyz, np.ascontiguousarray(mat, dtype=np.float64).reshape(9))
    xyzw = np.array([wxyz[1], wxyz[2], wxyz[3], wxyz[0]])
    # One hemisphere, so equal rotations give equal vectors. The reference is the top-down
    # orientation (not w >= 0, whose boundary runs right through every top-down grasp).
    return -xyzw if xyzw @ TOP_DOWN_QUAT_XYZW < 0.0 else xyzw


def mat_from_quat_xyzw(quat: np.ndarray) -> np.ndarray:
    q = np.asarray(quat, dtype=np.float64)
    mat = np.empty(9)
    mujoco.mju_quat2Mat(mat, np.array([q[3], q[0], q[1], q[2]]) / np.linalg.norm(q))
    return mat.reshape(3, 3)


def rotvec_from_mat(mat: np.ndarray) -> np.ndarray:
    """Axis * angle (rad) of a rotation matrix."""
    wxyz = np.empty(4)
    mujoco.mju_mat2Quat(wxyz, np.ascontiguousarray(mat, dtype=np.float64).reshape(9))
    rotvec = np.empty(3)
    mujoco.mju_quat2Vel(rotvec, wxyz, 1.0)
    return rotvec


def orientation_error(target_mat: np.ndarray, current_mat: np.ndarray) -> np.ndarray:
    """Rotation vector (base frame) that turns ``current_mat`` into ``target_mat``."""
    return rotvec_from_mat(target_mat @ current_mat.T)
