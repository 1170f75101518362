"""`rl sim view` writes PNG frames per camera."""

from __future__ import annotations

import argparse

import imagecodecs
import pytest

from robot_learning.sim import cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rl")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_view_writes_pngs(tmp_path, capsys):
    out = tmp_path / "frames"
    status = run(
        ["sim", "view", "--task", "lift", "--seed", "2", "--out", str(out), "--frames", "3"]
    )
    assert status == 0
    for camera in ("front", "wrist", "side"):
        files = sorted(out.glob(f"lift_seed2_{camera}_*.png"))
        assert len(files) == 3
        image = imagecodecs.png_decode(files[-1].read_bytes())
        assert image.shape == (240, 320, 3)
    assert "success=True" in capsys.readouterr().out


def test_view_unknown_task_fails_cleanly(tmp_path, caplog):
    assert run(["sim", "view", "--task", "fly", "--out", str(tmp_path)]) == 2
    assert "known tasks" in caplog.text


def test_sim_without_subcommand_prints_help(capsys):
    assert run(["sim"]) == 2
    assert "view" in capsys.readouterr().out


def test_sim_commands_are_extensible():
    def add_probe(sim_subparsers):
        parser = sim_subparsers.add_parser("probe")
        parser.set_defaults(func=lambda args: 7)

    cli.SIM_COMMANDS.append(add_probe)
    try:
        assert run(["sim", "probe"]) == 7
    finally:
        cli.SIM_COMMANDS.remove(add_probe)


def test_bad_image_size():
    with pytest.raises(argparse.ArgumentTypeError, match="HEIGHTxWIDTH"):
        cli.parse_image_size("big")
