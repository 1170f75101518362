"""Rotations and rigid transforms: the one module for hardware, simulator, calibration, policies.

Conventions, everywhere in the project:
- quaternions are (x, y, z, w), as ROS ``geometry_msgs`` and robot_learning/hardware/robot.py;
  MuJoCo's (w, x, y, z) order is converted only here (``quat_xyzw_from_wxyz``);
- a transform ``T_a_b`` is a 4x4 homogeneous matrix taking points in frame b to frame a,
  so ``T_a_c = T_a_b @ T_b_c``;
- angles in radians unless a name says ``_deg``; lengths in metres.

Conversions go through scipy's ``Rotation``; the batched quaternion/matrix pair at the end
also accepts torch tensors (the policies convert on the GPU with gradients), so there is one
formula for training, inference, the simulator and the drivers.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

# TCP pointing straight down, hand x along base x: the real arm's "ready" orientation.
TOP_DOWN_MAT = np.diag([1.0, -1.0, -1.0])
TOP_DOWN_QUAT_XYZW = np.array([1.0, 0.0, 0.0, 0.0])


# -- quaternions (x, y, z, w) -------------------------------------------------------------------
def quat_multiply_xyzw(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of (x, y, z, w) quaternions (rotate by b first, then a)."""
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
    return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64)).as_quat()


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


def quat_xyzw_from_wxyz(wxyz: np.ndarray) -> np.ndarray:
    """MuJoCo's (w, x, y, z) order to the project's (x, y, z, w)."""
    wxyz = np.asarray(wxyz, dtype=np.float64)
    return np.concatenate([wxyz[..., 1:], wxyz[..., :1]], axis=-1)


def quat_wxyz_from_xyzw(xyzw: np.ndarray) -> np.ndarray:
    """The project's (x, y, z, w) to MuJoCo's (w, x, y, z) order."""
    xyzw = np.asarray(xyzw, dtype=np.float64)
    return np.concatenate([xyzw[..., 3:], xyzw[..., :3]], axis=-1)


# -- rotation matrices ----------------------------------------------------------------------------
def quat_xyzw_from_mat(mat: np.ndarray, hemisphere: np.ndarray = TOP_DOWN_QUAT_XYZW) -> np.ndarray:
    """Unit quaternion of a rotation matrix, in the hemisphere of ``hemisphere``.

    One hemisphere, so equal rotations give equal vectors. The default reference is the
    top-down orientation (not w >= 0, whose boundary runs right through every top-down grasp).
    """
    xyzw = Rotation.from_matrix(np.asarray(mat, dtype=np.float64)).as_quat()
    return -xyzw if xyzw @ hemisphere < 0.0 else xyzw


def mat_from_quat_xyzw(quat: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a (not necessarily unit) (x, y, z, w) quaternion."""
    return Rotation.from_quat(np.asarray(quat, dtype=np.float64)).as_matrix()


def rotvec_from_mat(mat: np.ndarray) -> np.ndarray:
    """Axis * angle (rad) of a rotation matrix."""
    return Rotation.from_matrix(np.asarray(mat, dtype=np.float64)).as_rotvec()


def mat_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of axis * angle (rad); OpenCV's ``rvec`` is this."""
    return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64).reshape(-1)).as_matrix()


def mat_from_axis_angle(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotation by ``angle_rad`` about ``axis`` (any non-zero length)."""
    axis = np.asarray(axis, dtype=np.float64)
    return mat_from_rotvec(axis / np.linalg.norm(axis) * angle_rad)


def orientation_error(target_mat: np.ndarray, current_mat: np.ndarray) -> np.ndarray:
    """Rotation vector (base frame) that turns ``current_mat`` into ``target_mat``."""
    return rotvec_from_mat(target_mat @ current_mat.T)


def rotation_angle_rad(a_mat: np.ndarray, b_mat: np.ndarray) -> float:
    """Angle of the rotation between two rotation matrices."""
    cos = (np.trace(np.asarray(a_mat).T @ np.asarray(b_mat)) - 1.0) / 2.0
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


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


def look_at_mat(forward: np.ndarray, up: np.ndarray, *, optical: bool = True) -> np.ndarray:
    """Rotation whose z (optical) axis points along ``forward`` with y roughly against ``up``.

    ``optical`` True gives the OpenCV camera frame (x right, y down, z forward).
    """
    z = np.asarray(forward, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64)) if optical else np.cross(up, z)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError(f"up {up} is parallel to the viewing direction {forward}")
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


# -- rigid transforms (4x4) ------------------------------------------------------------------------
def make_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4x4 homogeneous transform from a 3x3 rotation and a 3-vector translation."""
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return transform


def invert_transform(transform: np.ndarray) -> np.ndarray:
    """T_b_a from T_a_b (exact for rigid transforms)."""
    rotation = transform[:3, :3]
    return make_transform(rotation.T, -rotation.T @ transform[:3, 3])


def transform_from_pose(position: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """4x4 transform from a position and an (x, y, z, w) quaternion (a robot pose)."""
    return make_transform(mat_from_quat_xyzw(quat_xyzw), position)


def pose_from_transform(transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position (3,), quaternion (x, y, z, w)) of a 4x4 transform."""
    return transform[:3, 3].copy(), quat_xyzw_from_mat(transform[:3, :3])


def transform_from_rotvec(rotvec: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4x4 transform from OpenCV's (rvec, tvec)."""
    return make_transform(mat_from_rotvec(rotvec), translation)


def rotvec_translation(transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's (rvec, tvec) of a 4x4 transform."""
    return rotvec_from_mat(transform[:3, :3]), transform[:3, 3].copy()


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) points in frame b -> frame a, for ``transform`` = T_a_b."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return points @ transform[:3, :3].T + transform[:3, 3]


def transform_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(translation difference in metres, rotation difference in radians) of two transforms."""
    return (
        float(np.linalg.norm(a[:3, 3] - b[:3, 3])),
        rotation_angle_rad(a[:3, :3], b[:3, :3]),
    )


def mean_transform(transforms: list[np.ndarray]) -> np.ndarray:
    """Chordal mean of rigid transforms (mean translation, rotation projected onto SO(3))."""
    stack = np.asarray(transforms, dtype=np.float64)
    rotation = Rotation.from_matrix(stack[:, :3, :3]).mean().as_matrix()
    return make_transform(rotation, stack[:, :3, 3].mean(axis=0))


# -- batched quaternion <-> matrix for numpy arrays and torch tensors --------------------------
def _array_namespace(x: Any) -> Any:
    """``torch`` for a torch tensor, else numpy; torch is never imported from here."""
    return sys.modules["torch"] if type(x).__module__.startswith("torch") else np


def batch_matrix_from_quat(quat_xyzw: Any) -> Any:
    """(..., 4) x, y, z, w -> (..., 3, 3); the quaternion need not be unit length."""
    xp = _array_namespace(quat_xyzw)
    q = quat_xyzw / ((quat_xyzw * quat_xyzw).sum(-1) ** 0.5)[..., None]
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return xp.stack(rows, -1).reshape(tuple(q.shape[:-1]) + (3, 3))


def batch_quat_from_matrix(mat: Any) -> Any:
    """(..., 3, 3) -> (..., 4) x, y, z, w (unit; the sign is arbitrary, as always).

    Of the four algebraically equal formulas, each row uses the one whose pivot (trace or a
    diagonal entry) is largest, so it stays accurate at every rotation.
    """
    xp = _array_namespace(mat)
    m = mat
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = xp.stack(
        [
            xp.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 1, 0] - m[..., 0, 1],
                    1 + trace,
                ],
                -1,
            ),
            xp.stack(
                [
                    1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 2, 1] - m[..., 1, 2],
                ],
                -1,
            ),
            xp.stack(
                [
                    m[..., 0, 1] + m[..., 1, 0],
                    1 + m[..., 1, 1] - m[..., 0, 0] - m[..., 2, 2],
                    m[..., 1, 2] + m[..., 2, 1],
                    m[..., 0, 2] - m[..., 2, 0],
                ],
                -1,
            ),
            xp.stack(
                [
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 + m[..., 2, 2] - m[..., 0, 0] - m[..., 1, 1],
                    m[..., 1, 0] - m[..., 0, 1],
                ],
                -1,
            ),
        ],
        -2,
    )  # fmt: skip  (..., 4, 4): each row is 4|q_i| * q for its largest component i
    best = xp.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1).argmax(-1)
    pick = xp.stack([best == i for i in range(4)], -1)[..., None]
    q = (candidates * pick).sum(-2)
    return q / ((q * q).sum(-1) ** 0.5)[..., None]
