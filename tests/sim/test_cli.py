"""`rl sim view` writes PNG frames per camera; `rl sim` is a group like any other."""

from __future__ import annotations

import argparse

import imagecodecs
import pytest

from robot_learning.cli import main
from robot_learning.sim import cli


def test_view_writes_pngs(tmp_path, capsys):
    out = tmp_path / "frames"
    status = main(
        ["sim", "view", "--task", "lift", "--seed", "2", "--out", str(out), "--frames", "3"]
    )
    assert status == 0
    for camera in ("front", "wrist", "side"):
        files = sorted(out.glob(f"lift_seed2_{camera}_*.png"))
        assert len(files) == 3
        image = imagecodecs.png_decode(files[-1].read_bytes())
        assert image.shape == (240, 320, 3)
    assert "success=True" in capsys.readouterr().out


def test_view_unknown_task_fails_cleanly(tmp_path, capsys):
    assert main(["sim", "view", "--task", "fly", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rl sim view: error: ") and "known tasks" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sim_without_subcommand_prints_help(capsys):
    assert main(["sim"]) == 2
    assert "view" in capsys.readouterr().err


def test_bad_image_size():
    with pytest.raises(argparse.ArgumentTypeError, match="HEIGHTxWIDTH"):
        cli.parse_image_size("big")
