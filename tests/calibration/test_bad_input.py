"""Bad input is detected and explained: no board, another board, too few views, a file for
other cameras, a result that failed its check."""

from __future__ import annotations

import dataclasses
import datetime as dt

import cv2
import numpy as np
import pytest

from calibration.calibration_file import (
    CalibrationFileError,
    CameraCalibration,
    WorkcellCalibration,
)
from calibration.detection import BoardDetector, BoardNotFoundError
from calibration.intrinsics import (
    CalibrationInputError,
    calibrate_intrinsics,
    verify_intrinsics,
)
from calibration.poses import manual_capture
from robot_learning.charuco_board import CharucoBoardSpec
from tests.calibration.helpers import CAMERA, TRUE_HAND_CAMERA, eye_in_hand_views

PRINTED = CharucoBoardSpec(squares_x=5, squares_y=4, square_m=0.04, marker_m=0.03)


def printed_image() -> np.ndarray:
    image = PRINTED.image(px_per_square=60)
    return cv2.copyMakeBorder(image, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)


def test_the_printed_board_is_found_with_its_own_definition():
    detection = BoardDetector(PRINTED).detect(printed_image())
    assert len(detection) == PRINTED.corner_count
    # Corner 0 is one square in from the top-left of the chessboard (40 px border + margin).
    np.testing.assert_allclose(detection.image_points[0], [40 + 30 + 60, 40 + 30 + 60], atol=0.6)


def test_no_board_in_view_says_so():
    with pytest.raises(BoardNotFoundError, match="wrist view 3: board not visible"):
        BoardDetector(PRINTED).detect(np.full((480, 640, 3), 128, np.uint8), where="wrist view 3")


def test_another_dictionary_is_named():
    other = CharucoBoardSpec(squares_x=5, squares_y=4, square_m=0.04, marker_m=0.03,
                             dictionary="DICT_5X5_100")  # fmt: skip
    with pytest.raises(BoardNotFoundError, match="dictionary DICT_4X4_50 were seen"):
        BoardDetector(other).detect(printed_image())


def test_another_square_count_is_explained():
    swapped = CharucoBoardSpec(squares_x=4, squares_y=5, square_m=0.04, marker_m=0.03)
    with pytest.raises(BoardNotFoundError, match="check squares_x/squares_y"):
        BoardDetector(swapped).detect(printed_image())


def test_too_few_views_for_intrinsics():
    detections = [v.detection for v in eye_in_hand_views(4)]
    with pytest.raises(CalibrationInputError, match="4 usable views.*need at least 6"):
        calibrate_intrinsics(detections, camera="front")


def test_intrinsics_reject_a_bad_view_and_map_coverage():
    views = eye_in_hand_views(14, seed=5)
    detections = [v.detection for v in views]
    bad = detections[3]
    noisy = bad.image_points + np.random.default_rng(0).normal(0, 3.0, bad.image_points.shape)
    detections[3] = type(bad)(bad.ids, noisy, bad.object_points, bad.image_size)
    result = calibrate_intrinsics(detections)
    assert list(result.rejected_views) == [3] and 3 not in result.view_errors_px
    assert abs(result.intrinsics.fx - CAMERA.fx) / CAMERA.fx < 0.005
    assert result.coverage.shape == (6, 8) and result.coverage.sum() > 0
    assert 0.0 < result.coverage_fraction <= 1.0


def make_file(**camera_overrides) -> WorkcellCalibration:
    camera = CameraCalibration(name="wrist", serial="123", mount="hand", intrinsics=CAMERA,
                               pose=TRUE_HAND_CAMERA)  # fmt: skip
    for key, value in camera_overrides.items():
        setattr(camera, key, value)
    return WorkcellCalibration(workcell="cell_a", cameras={"wrist": camera})


def test_file_round_trip_and_exports(tmp_path):
    calibration = make_file()
    path = calibration.save(tmp_path / "cell_a.yaml")
    loaded = WorkcellCalibration.load(path)
    assert loaded.fingerprint() == calibration.fingerprint()
    np.testing.assert_allclose(loaded.cameras["wrist"].pose, TRUE_HAND_CAMERA)
    info = loaded.cameras["wrist"].camera_info()
    assert info["k"][0] == CAMERA.fx and info["distortion_model"] == "plumb_bob"
    (tf,) = loaded.static_transforms()
    assert tf["header"]["frame_id"] == "hand_tcp"
    assert tf["child_frame_id"] == "wrist_color_optical_frame"
    T_base_hand = np.eye(4)
    T_base_hand[:3, 3] = [0.5, 0.0, 0.4]
    np.testing.assert_allclose(loaded.cameras["wrist"].T_base_camera(T_base_hand),
                               T_base_hand @ TRUE_HAND_CAMERA)  # fmt: skip


def test_a_file_for_other_cameras_is_refused(tmp_path):
    calibration = make_file()
    with pytest.raises(CalibrationFileError, match="calibrated as serial 123, is now 999"):
        calibration.check_cameras({"wrist": "999"})
    with pytest.raises(CalibrationFileError, match=r"no calibration for camera\(s\) \['front'\]"):
        calibration.check_cameras({"wrist": "123", "front": "555"})
    calibration.check_cameras({"wrist": "123"})


def test_failed_check_is_not_saved_unless_forced(tmp_path):
    calibration = make_file(holdout_passed=False)
    with pytest.raises(CalibrationFileError, match="failed the held-out-view check"):
        calibration.save(tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()
    assert calibration.save(tmp_path / "x.yaml", force=True).exists()


def test_recording_problems_name_stale_and_mismatched_calibrations():
    calibration = make_file()
    calibration.created = (dt.datetime.now(dt.UTC) - dt.timedelta(days=90)).isoformat()
    problems = calibration.recording_problems({"wrist": "999", "front": ""})
    assert any("serial 123, is 999" in p for p in problems)
    assert any("'front' is not calibrated" in p for p in problems)
    assert any("90 days old" in p for p in problems)


def test_an_update_drops_the_camera_pairs_of_a_recalibrated_camera(tmp_path):
    older = make_file()
    side = dataclasses.replace(older.cameras["wrist"], name="side", serial="7", mount="fixed")
    front = dataclasses.replace(side, name="front", serial="8")
    older.cameras |= {"side": side, "front": front}
    older.camera_pairs = {"front-side": {"rms_px": 0.3}, "side-top": {"rms_px": 0.4}}
    path = older.save(tmp_path / "cell_a.yaml")
    newer = WorkcellCalibration(workcell="cell_a", cameras={"front": front})
    newer.save(path)
    updated = WorkcellCalibration.load(path)
    assert sorted(updated.cameras) == ["front", "side", "wrist"]
    assert updated.camera_pairs == {"side-top": {"rms_px": 0.4}}


def test_wrong_version_and_missing_file(tmp_path):
    path = make_file().save(tmp_path / "c.yaml")
    path.write_text(path.read_text().replace("version: 1", "version: 7"))
    with pytest.raises(CalibrationFileError, match="version 7"):
        WorkcellCalibration.load(path)
    with pytest.raises(FileNotFoundError, match="run `rl calibrate` first"):
        WorkcellCalibration.load(tmp_path / "none.yaml")


def test_factory_intrinsics_are_verified_against_board_views():
    detections = [v.detection for v in eye_in_hand_views(8, seed=6)]
    right = np.median(list(verify_intrinsics(CAMERA, detections).values()))
    assert right < 0.2  # the pixel noise of the views
    off = dataclasses.replace(
        CAMERA, fx=CAMERA.fx * 1.02, cx=CAMERA.cx + 6.0, distortion=(0.0,) * 5
    )
    wrong = np.median(list(verify_intrinsics(off, detections).values()))
    assert wrong > 0.4 and wrong > 4 * right


def test_manual_capture_keeps_views_that_show_the_board():
    detector = BoardDetector(PRINTED)
    blank = np.full((400, 460), 255, np.uint8)
    frames = iter([blank, printed_image(), blank, printed_image(), printed_image()])

    def accept(image):
        try:
            detector.detect(image)
        except BoardNotFoundError:
            return False
        return True

    seen = []
    kept = manual_capture(frames, accept, 2, min_interval_s=0.0, on_progress=seen.append)
    assert len(kept) == 2 and seen == [1, 2]
