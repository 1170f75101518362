"""``rl calibrate``: the sim check prints one JSON object with the errors against truth."""

from __future__ import annotations

import json

import numpy as np

from robot_learning.cli import main

KEYS = ("focal_error_pct", "principal_point_error_px", "handeye_translation_error_mm",
        "handeye_rotation_error_deg")  # fmt: skip


def test_check_sim_json_reports_errors_against_truth(capsys):
    code = main(["calibrate", "check", "--sim", "--json", "--cameras", "wrist",
                 "--views", "10", "--size", "240x320"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in KEYS:
        assert key in out and key in out["wrist"]
        assert out[key] == out["wrist"][key]
    assert out["cameras"] == ["wrist"]
    assert out["focal_error_pct"] < 1.0 and out["handeye_translation_error_mm"] < 3.0


def test_capture_without_robot_poses_is_explained(tmp_path, capsys):
    from calibration.capture_dir import CaptureDir
    from robot_learning.charuco_board import TABLE_BOARD

    CaptureDir.create(tmp_path, TABLE_BOARD, {"front": ("fixed", "1")})
    assert main(["calibrate", "handeye", "--capture", str(tmp_path)]) == 2  # bad input
    err = capsys.readouterr().err
    assert err.startswith("rl calibrate handeye: error: ") and "no hand poses were logged" in err


def test_two_runs_update_the_workcell_file_and_keep_each_others_cameras(
    tmp_path, capsys, monkeypatch
):
    """The front camera first, then the wrist: the second run keeps the front (pose, date)
    and adds the wrist; the file's ``created`` is the last update. Recalibrating the front
    keeps the wrist."""
    import datetime as dt

    from calibration.calibration_file import WorkcellCalibration

    monkeypatch.setenv("RL_CALIBRATION_DIR", str(tmp_path))
    common = [
        "--sim",
        "--json",
        "--views",
        "8",
        "--size",
        "240x320",
        "--workcell",
        "lab",
        "--force",
    ]  # (8 small views: a held-out check may fail; not the point here)
    assert main(["calibrate", "handeye", *common, "--cameras", "front"]) == 0
    first = WorkcellCalibration.load(tmp_path / "lab.yaml")
    assert list(first.cameras) == ["front"]
    # the first run dates from ten days ago (the file format's per-camera date)
    aged = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).isoformat(timespec="seconds")
    (tmp_path / "lab.yaml").write_text(
        (tmp_path / "lab.yaml").read_text().replace(first.created, aged)
    )
    capsys.readouterr()
    assert main(["calibrate", "handeye", *common, "--cameras", "wrist"]) == 0
    assert json.loads(capsys.readouterr().out)["saved"] == str(tmp_path / "lab.yaml")
    both = WorkcellCalibration.load(tmp_path / "lab.yaml")
    assert sorted(both.cameras) == ["front", "wrist"]
    assert both.cameras["wrist"].mount == "hand" and both.cameras["front"].mount == "fixed"
    np.testing.assert_array_equal(both.cameras["front"].pose, first.cameras["front"].pose)
    assert both.calibrated("front") == aged and round(both.camera_age_days("front")) == 10
    assert both.camera_age_days("wrist") < 0.1 and both.age_days() < 0.1
    assert both.recording_problems({"front": ""}, max_age_days=5) == [
        "calibration of camera 'front' in 'lab' is 10 days old; recalibrate"
    ]
    assert main(["calibrate", "handeye", *common, "--cameras", "front", "--seed", "1"]) == 0
    third = WorkcellCalibration.load(tmp_path / "lab.yaml")
    np.testing.assert_array_equal(third.cameras["wrist"].pose, both.cameras["wrist"].pose)
    assert not np.array_equal(third.cameras["front"].pose, first.cameras["front"].pose)
    assert third.camera_age_days("front") < 0.1


def test_an_unreadable_existing_file_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "lab.yaml"
    out.write_text("format: something_else\n")
    assert (
        main(
            [
                "calibrate",
                "handeye",
                "--sim",
                "--views",
                "8",
                "--size",
                "240x320",
                "--cameras",
                "wrist",
                "--out",
                str(out),
            ]
        )
        == 1
    )  # computed, not saved
    assert "exists but cannot be updated" in capsys.readouterr().err
    assert out.read_text() == "format: something_else\n"
