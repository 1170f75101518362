"""Hand-eye solvers on synthetic views with known truth: both set-ups, OpenCV's five methods,
outliers, and motions that cannot determine the answer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibration.handeye import (
    HAND_EYE_METHODS,
    DegenerateMotionError,
    HandEyeView,
    RefineOptions,
    holdout_check,
    solve_hand_eye,
)
from calibration.intrinsics import CalibrationInputError
from calibration.poses import PoseLimits, orbit_poses
from robot_learning.geometry import (
    invert_transform,
    look_at_mat,
    make_transform,
    mat_from_axis_angle,
    transform_error,
)
from tests.calibration.helpers import (
    CAMERA,
    TRUE_BASE_BOARD,
    TRUE_HAND_CAMERA,
    detection,
    eye_in_hand_views,
)


def assert_close(T, truth, *, mm, deg):
    t_m, r_rad = transform_error(T, truth)
    assert 1000 * t_m < mm and np.degrees(r_rad) < deg, (1000 * t_m, np.degrees(r_rad))


def test_eye_in_hand_recovers_hand_camera_and_compares_all_five_methods():
    views = eye_in_hand_views()
    result = solve_hand_eye(views, CAMERA, "eye_in_hand")
    assert_close(result.X, TRUE_HAND_CAMERA, mm=0.5, deg=0.1)
    assert_close(result.Y, TRUE_BASE_BOARD, mm=0.5, deg=0.1)
    assert set(result.methods) == set(HAND_EYE_METHODS)
    # method= really reaches OpenCV (positionally it would run Tsai five times).
    solutions = [T for T in result.methods.values()]
    assert max(transform_error(solutions[0], T)[0] for T in solutions[1:]) > 1e-7
    for T in result.methods.values():
        assert_close(T, TRUE_HAND_CAMERA, mm=5.0, deg=0.5)
    assert result.initial_method in HAND_EYE_METHODS
    assert result.rms_px < 0.2 and not result.outlier_views
    assert result.translation_residual_mm < 0.5 and result.rotation_residual_deg < 0.1
    assert abs(result.intrinsics.fx - CAMERA.fx) / CAMERA.fx < 1e-3


def test_eye_to_hand_passes_inverse_hand_poses_and_recovers_base_camera():
    rng = np.random.default_rng(3)
    target = np.array([0.6, 0.0, 0.35])
    sight = target - [1.3, 0.1, 0.7]
    true_base_camera = make_transform(look_at_mat(sight, [0, 0, 1]), [1.3, 0.1, 0.7])
    true_hand_board = make_transform(mat_from_axis_angle([1, 1, 0], 2.6), [0.05, 0.05, 0.12])
    # Start: the board at the target, facing the camera (camera looks along the board's +z).
    board_start = make_transform(look_at_mat(sight, [0, 0, 1]), target)
    start = board_start @ invert_transform(true_hand_board)
    anywhere = PoseLimits((-2, -2, -2), (2, 2, 2), max_hand_tilt_deg=180.0)
    views = []
    for T_base_hand in orbit_poses(
        start, target, sight, 18, rng=rng, spread_m=0.1, limits=anywhere
    ):
        T_camera_board = invert_transform(true_base_camera) @ T_base_hand @ true_hand_board
        views.append(HandEyeView(T_base_hand, detection(T_camera_board, rng)))
    # Intrinsics known exactly here: a far camera's principal point trades against rotation.
    exact = RefineOptions(refine_intrinsics=False)
    result = solve_hand_eye(views, CAMERA, "eye_to_hand", options=exact)
    assert_close(result.X, true_base_camera, mm=0.5, deg=0.05)
    assert_close(result.Y, true_hand_board, mm=0.5, deg=0.05)


def test_outlier_view_is_flagged_and_left_out():
    views = eye_in_hand_views(16, seed=1)
    bad = views[5]
    shifted = dataclasses.replace(bad.detection, image_points=bad.detection.image_points + [6, -4])
    views[5] = HandEyeView(bad.T_base_hand, shifted)
    result = solve_hand_eye(views, CAMERA, "eye_in_hand")
    assert list(result.outlier_views) == [5]
    assert_close(result.X, TRUE_HAND_CAMERA, mm=0.5, deg=0.15)


def test_holdout_check_predicts_views_it_was_not_fitted_to():
    check = holdout_check(eye_in_hand_views(15, seed=2), CAMERA, "eye_in_hand")
    assert check.passed and check.held_out == [2, 7, 12]
    assert check.rms_px < 0.3 and check.translation_mm < 1.0


def test_pure_translations_are_refused_with_an_explanation():
    views = eye_in_hand_views(8)
    start = views[0].T_base_hand
    shifted = [HandEyeView(make_transform(start[:3, :3], start[:3, 3] + [0.02 * i, 0.01 * i, 0]),
                           views[0].detection) for i in range(8)]  # fmt: skip
    with pytest.raises(DegenerateMotionError, match="only translated"):
        solve_hand_eye(shifted, CAMERA, "eye_in_hand", camera="wrist")


def test_rotations_about_one_axis_are_refused():
    first = eye_in_hand_views(1)[0]
    about_z = [make_transform(mat_from_axis_angle([0, 0, 1], 0.1 * i), [0, 0, 0]) for i in range(8)]
    one_axis = [HandEyeView(R @ first.T_base_hand, first.detection) for R in about_z]
    with pytest.raises(DegenerateMotionError, match="one axis"):
        solve_hand_eye(one_axis, CAMERA, "eye_in_hand")


def test_too_few_views_are_refused():
    with pytest.raises(CalibrationInputError, match="need at least 5"):
        solve_hand_eye(eye_in_hand_views(4), CAMERA, "eye_in_hand", camera="wrist")
