"""The one geometry module: quaternions (x, y, z, w) and transforms against worked-out cases."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.geometry import (
    TOP_DOWN_QUAT_XYZW,
    batch_matrix_from_quat,
    batch_quat_from_matrix,
    invert_transform,
    mat_from_quat_xyzw,
    mat_from_rotvec,
    normalized_quat,
    orientation_error,
    pose_from_transform,
    quat_angle_rad,
    quat_from_rotvec_xyzw,
    quat_multiply_xyzw,
    quat_wxyz_from_xyzw,
    quat_xyzw_from_mat,
    quat_xyzw_from_wxyz,
    rotvec_from_mat,
    rotvec_translation,
    slerp_xyzw,
    transform_error,
    transform_from_pose,
    transform_from_rotvec,
    transform_points,
    wrap_angle,
    yaw_mat,
    yaw_of_mat,
)

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def _rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v rotated by q, as q * (v, 0) * q^-1."""
    conj = q * np.array([-1.0, -1.0, -1.0, 1.0])
    return quat_multiply_xyzw(quat_multiply_xyzw(q, np.append(v, 0.0)), conj)[:3]


def test_multiply_by_inverse_is_identity() -> None:
    q = normalized_quat(np.array([0.3, -0.5, 0.2, 0.8]), "q")
    conj = q * np.array([-1.0, -1.0, -1.0, 1.0])
    np.testing.assert_allclose(quat_multiply_xyzw(q, conj), IDENTITY, atol=1e-12)
    np.testing.assert_allclose(quat_multiply_xyzw(conj, q), IDENTITY, atol=1e-12)


def test_multiply_order_matters_and_composes_rotations() -> None:
    about_z = quat_from_rotvec_xyzw(np.array([0.0, 0.0, np.pi / 2]))
    about_x = quat_from_rotvec_xyzw(np.array([np.pi / 2, 0.0, 0.0]))
    # a * b rotates by b first: y -(x)-> z -(z)-> z; y -(z)-> -x -(x)-> -x.
    np.testing.assert_allclose(
        _rotate(quat_multiply_xyzw(about_z, about_x), np.array([0.0, 1.0, 0.0])),
        [0.0, 0.0, 1.0],
        atol=1e-12,
    )
    np.testing.assert_allclose(
        _rotate(quat_multiply_xyzw(about_x, about_z), np.array([0.0, 1.0, 0.0])),
        [-1.0, 0.0, 0.0],
        atol=1e-12,
    )


def test_rotvec_quarter_turn_about_z_takes_x_to_y() -> None:
    q = quat_from_rotvec_xyzw(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(q, [0.0, 0.0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    np.testing.assert_allclose(_rotate(q, np.array([1.0, 0.0, 0.0])), [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(quat_from_rotvec_xyzw(np.zeros(3)), IDENTITY)


def test_slerp_endpoints_and_midpoint_angle() -> None:
    a = quat_from_rotvec_xyzw(np.array([0.0, 0.0, 0.2]))
    b = quat_from_rotvec_xyzw(np.array([0.0, 0.0, 1.4]))
    np.testing.assert_allclose(slerp_xyzw(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(slerp_xyzw(a, b, 1.0), b, atol=1e-12)
    mid = slerp_xyzw(a, b, 0.5)
    assert quat_angle_rad(a, mid) == pytest.approx(0.6, abs=1e-9)
    assert quat_angle_rad(mid, b) == pytest.approx(0.6, abs=1e-9)
    np.testing.assert_allclose(mid, quat_from_rotvec_xyzw(np.array([0.0, 0.0, 0.8])), atol=1e-12)
    # The shorter arc even when b is given in the other hemisphere.
    np.testing.assert_allclose(slerp_xyzw(a, -b, 0.5), mid, atol=1e-12)


def test_angle_between_q_and_minus_q_is_zero() -> None:
    q = normalized_quat(np.array([0.1, 0.7, -0.2, 0.6]), "q")
    assert quat_angle_rad(q, -q) == pytest.approx(0.0, abs=1e-6)
    about_x = quat_from_rotvec_xyzw(np.array([0.5, 0.0, 0.0]))
    assert quat_angle_rad(IDENTITY, about_x) == pytest.approx(0.5, abs=1e-9)


def test_normalized_quat_scales_and_names_bad_input() -> None:
    np.testing.assert_allclose(normalized_quat(np.array([0.0, 0.0, 0.0, 2.0]), "q"), IDENTITY)
    with pytest.raises(ValueError, match="target quaternion"):
        normalized_quat(np.zeros(4), "target quaternion")
    with pytest.raises(ValueError, match="target quaternion"):
        normalized_quat(np.array([0.0, 0.0, np.nan, 1.0]), "target quaternion")


def test_yaw_helpers() -> None:
    np.testing.assert_allclose(yaw_mat(np.pi / 2) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    assert yaw_of_mat(yaw_mat(2.5)) == pytest.approx(2.5)
    assert wrap_angle(3 * np.pi / 2) == pytest.approx(-np.pi / 2)
    assert wrap_angle(0.9, np.pi / 2) == pytest.approx(0.9 - np.pi / 2)


def test_rotvec_round_trip_through_quaternions() -> None:
    from robot_learning.geometry import quat_conjugate, rotvec_from_quat_xyzw

    rng = np.random.default_rng(0)
    for _ in range(20):
        rotvec = rng.normal(size=3)
        rotvec *= min(1.0, 3.0 / np.linalg.norm(rotvec))
        q = quat_from_rotvec_xyzw(rotvec)
        np.testing.assert_allclose(rotvec_from_quat_xyzw(q), rotvec, atol=1e-9)
        np.testing.assert_allclose(rotvec_from_quat_xyzw(-q), rotvec, atol=1e-9)
        np.testing.assert_allclose(
            quat_multiply_xyzw(q, quat_conjugate(q)), [0, 0, 0, 1], atol=1e-12
        )


def test_transforms_compose_invert_and_round_trip_through_poses() -> None:
    rng = np.random.default_rng(0)
    T_a_b = transform_from_rotvec(rng.normal(size=3), rng.normal(size=3))
    T_b_c = transform_from_pose(rng.normal(size=3), normalized_quat(rng.normal(size=4), "q"))
    np.testing.assert_allclose(invert_transform(T_a_b) @ T_a_b, np.eye(4), atol=1e-12)
    points_c = rng.normal(size=(5, 3))
    np.testing.assert_allclose(
        transform_points(T_a_b @ T_b_c, points_c),
        transform_points(T_a_b, transform_points(T_b_c, points_c)),
        atol=1e-12,
    )
    position, quat = pose_from_transform(T_b_c)
    np.testing.assert_allclose(transform_from_pose(position, quat), T_b_c, atol=1e-12)
    rvec, tvec = rotvec_translation(T_a_b)
    np.testing.assert_allclose(transform_from_rotvec(rvec, tvec), T_a_b, atol=1e-12)
    moved = T_a_b @ transform_from_rotvec(np.array([0.0, 0.01, 0.0]), np.array([0.003, 0, 0]))
    translation_m, angle_rad = transform_error(T_a_b, moved)
    assert angle_rad == pytest.approx(0.01, abs=1e-9)
    assert translation_m == pytest.approx(0.003, abs=1e-9)


def test_mujoco_order_and_matrix_quaternion_agree() -> None:
    q = normalized_quat(np.array([0.1, 0.7, -0.2, 0.6]), "q")
    np.testing.assert_allclose(quat_xyzw_from_wxyz(quat_wxyz_from_xyzw(q)), q)
    mat = mat_from_quat_xyzw(q)
    back = quat_xyzw_from_mat(mat)
    assert quat_angle_rad(back, q) == pytest.approx(0.0, abs=1e-6)
    assert back @ TOP_DOWN_QUAT_XYZW >= 0.0  # the top-down hemisphere
    np.testing.assert_allclose(orientation_error(mat, mat), np.zeros(3), atol=1e-12)
    np.testing.assert_allclose(rotvec_from_mat(mat_from_rotvec([0.0, 0.3, 0.0])), [0.0, 0.3, 0.0])


def test_batched_conversions_match_scipy_for_numpy_and_torch() -> None:
    torch = pytest.importorskip("torch")
    q = np.random.default_rng(1).normal(size=(16, 4))
    mats = batch_matrix_from_quat(q)
    for i in range(16):
        np.testing.assert_allclose(mats[i], mat_from_quat_xyzw(q[i]), atol=1e-12)
    np.testing.assert_allclose(
        batch_matrix_from_quat(torch.from_numpy(q)).numpy(), mats, atol=1e-12
    )
    back = batch_quat_from_matrix(torch.from_numpy(mats)).numpy()
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs((back * unit).sum(-1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(batch_quat_from_matrix(mats), back, atol=1e-12)
