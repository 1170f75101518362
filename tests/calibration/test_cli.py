"""``rl calibrate``: the sim check prints one JSON object with the errors against truth."""

from __future__ import annotations

import json

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
