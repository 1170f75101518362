"""The acceptance bars, measured against the simulator's truth: the robot visits 15 poses per
camera, 480x640 images through a distorting, noisy lens; wrist camera eye-in-hand, front and
side cameras eye-to-hand, and the front-side extrinsics from their shared views."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from calibration.calibration_file import WorkcellCalibration
from calibration.sim import SimCalibrationConfig, run_sim_calibration
from robot_learning.geometry import transform_error
from robot_learning.sim.camera import REALISTIC_LENS

CAMERAS = ("wrist", "front", "side")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    config = SimCalibrationConfig(views=15, image_size=(480, 640), lens=REALISTIC_LENS)
    capture = tmp_path_factory.mktemp("capture")
    result = run_sim_calibration(config, progress=False, save_capture=capture)
    result.capture_dir = capture
    return result


@pytest.mark.parametrize("camera", CAMERAS)
def test_intrinsics_within_half_a_percent_and_two_pixels(run, camera):
    errors = run.errors[camera]
    assert errors["focal_error_pct"] < 0.5
    assert errors["principal_point_error_px"] < 2.0


@pytest.mark.parametrize("camera", CAMERAS)
def test_hand_eye_within_2_mm_and_0_2_degrees(run, camera):
    errors = run.errors[camera]
    assert errors["handeye_translation_error_mm"] < 2.0
    assert errors["handeye_rotation_error_deg"] < 0.2
    assert errors["views_used"] >= 10
    report = run.reports[camera]
    assert report.holdout is not None and report.holdout.passed
    assert len(report.hand_eye.methods) == 5 and not report.hand_eye.outlier_views


@pytest.mark.parametrize("camera", CAMERAS)
def test_distortion_is_estimated(run, camera):
    """Where the board was seen, the estimated lens bends rays as the true one does."""
    estimated = run.reports[camera].calibration.intrinsics
    truth = run.truth[camera][0]
    pixels = np.concatenate([d.image_points for d in run.reports[camera].views.values()])
    rays = cv2.undistortPoints(pixels.reshape(-1, 1, 2), truth.matrix, np.array(truth.distortion))
    rays = np.concatenate([rays.reshape(-1, 2), np.ones((len(pixels), 1))], axis=1)

    def lens_shift(intrinsics):  # pixels the lens moves each ray by
        pinhole = dataclasses.replace(intrinsics, distortion=(0.0,) * 5)
        return intrinsics.project(rays) - pinhole.project(rays)

    assert np.linalg.norm(lens_shift(truth), axis=1).max() > 3.0  # the lens matters here
    assert np.linalg.norm(lens_shift(estimated) - lens_shift(truth), axis=1).max() < 1.0


def test_camera_to_camera_agrees_with_hand_eye_and_truth(run):
    pair = run.calibration.camera_pairs["front-side"]
    assert pair["shared_views"] >= 5 and pair["rms_px"] < 0.5
    assert pair["handeye_translation_mm"] < 3.0 and pair["handeye_rotation_deg"] < 0.2
    front, side = run.reports["front"].calibration, run.reports["side"].calibration
    true_pair = np.linalg.inv(front.pose) @ side.pose  # hand-eye based, checked against truth above
    t_m, r_rad = transform_error(np.asarray(pair["T_a_b"]), true_pair)
    assert 1000 * t_m < 3.0 and np.degrees(r_rad) < 0.2


def test_workcell_file_round_trips_with_residuals(run, tmp_path):
    path = run.calibration.save(tmp_path / "sim.yaml")
    loaded = WorkcellCalibration.load(path)
    assert set(loaded.cameras) == set(CAMERAS)
    assert loaded.cameras["wrist"].mount == "hand" and loaded.cameras["front"].mount == "fixed"
    assert "T_hand_camera" in path.read_text() and "T_base_camera" in path.read_text()
    residuals = loaded.cameras["front"].residuals
    assert residuals["hand_eye"]["translation_residual_mm"] < 2.0
    assert residuals["intrinsics"]["coverage_fraction"] > 0.2
    assert residuals["holdout"]["passed"] is True
    frames = {t["child_frame_id"]: t["header"]["frame_id"] for t in loaded.static_transforms()}
    assert frames == {
        "wrist_color_optical_frame": "hand_tcp",
        "front_color_optical_frame": "base",
        "side_color_optical_frame": "base",
    }


def test_cli_calibrates_a_saved_capture_offline(run, tmp_path, capsys):
    from robot_learning.cli import main

    out = tmp_path / "offline.yaml"
    assert main(["calibrate", "handeye", "--capture", str(run.capture_dir / "table"),
                 "--out", str(out), "--workcell", "offline"]) == 0  # fmt: skip
    offline = WorkcellCalibration.load(out)
    online = run.reports["wrist"].calibration
    t_m, r_rad = transform_error(offline.cameras["wrist"].pose, online.pose)
    assert 1000 * t_m < 0.01 and np.degrees(r_rad) < 0.001  # same images, same answer
    assert main(["calibrate", "check", "--file", str(out), "--camera", "wrist=sim-wrist"]) == 0
    assert main(["calibrate", "check", "--file", str(out), "--camera", "wrist=817612"]) == 1
    assert "calibrated as serial sim-wrist, is now 817612" in capsys.readouterr().err
