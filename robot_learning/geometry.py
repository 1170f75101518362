"""Quaternion and rotation helpers shared by the hardware drivers and the simulator.

Pure numpy (no MuJoCo), so a real station can use them without the simulator installed.
Quaternions are (x, y, z, w), as in robot_learning/hardware/robot.py (ROS
``geometry_msgs`` order); angles in radians.
"""

from __future__ import annotations

import numpy as np


def quat_multiply_xyzw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of (x, y, z, w) quaternions."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_from_rotvec_xyzw(rotvec: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation vector (axis * angle, rad)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = rotvec / angle
    return np.concatenate([axis * np.sin(angle / 2.0), [np.cos(angle / 2.0)]])


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit (x, y, z, w) quaternion."""
    return np.array([-q[0], -q[1], -q[2], q[3]], dtype=np.float64)


def rotvec_from_quat_xyzw(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in [0, pi]) of a unit (x, y, z, w) quaternion."""
    q = np.asarray(q, dtype=np.float64)
    if q[3] < 0:
        q = -q  # the shorter way round
    sin_half = float(np.linalg.norm(q[:3]))
    if sin_half < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(sin_half, q[3])
    return q[:3] / sin_half * angle


def normalized_quat(q: np.ndarray, what: str) -> np.ndarray:
    """``q`` scaled to unit length; ``what`` names it in the error if it cannot be."""
    q = np.asarray(q, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if q.shape != (4,) or not np.isfinite(q).all() or norm < 1e-6:
        raise ValueError(f"{what} must be a finite non-zero (x, y, z, w) quaternion, got {q}")
    return q / norm


def quat_angle_rad(a: np.ndarray, b: np.ndarray) -> float:
    """Rotation angle between unit quaternions; q and -q count as the same rotation."""
    return 2.0 * float(np.arccos(min(1.0, abs(float(np.dot(a, b))))))


def slerp_xyzw(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    """Unit quaternion ``fraction`` of the way from a to b along the shorter arc."""
    if np.dot(a, b) < 0:
        b = -b
    angle = np.arccos(min(1.0, float(np.dot(a, b))))
    if angle < 1e-9:
        return a
    out = (np.sin((1 - fraction) * angle) * a + np.sin(fraction * angle) * b) / np.sin(angle)
    return out / np.linalg.norm(out)


def yaw_mat(yaw_rad: float) -> np.ndarray:
    """Rotation matrix about the base z axis."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_of_mat(mat: np.ndarray) -> float:
    """Heading of a body's x axis in the base xy plane."""
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def wrap_angle(angle_rad: float, period_rad: float = 2.0 * np.pi) -> float:
    """Wrap into [-period/2, period/2)."""
    return float((angle_rad + period_rad / 2.0) % period_rad - period_rad / 2.0)
