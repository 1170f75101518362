"""`rl`: one registration mechanism, one way of reporting errors, one list of exit codes.

A probe command registered exactly as every command is (an entry point with a dotted path)
gets the same handling: its errors print as one line naming the command, exit with the
status their class declares, and show a traceback only under ``-v``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from robot_learning import cli
from robot_learning.errors import ExitCode, Interrupted
from robot_learning.store import StoreCorruptError, StoreFullError

ROOT = Path(__file__).resolve().parents[1]
RAISES = {
    "corrupt": StoreCorruptError("demos.zarr/data/action/zarr.json: unreadable metadata"),
    "full": StoreFullError("demos.zarr: the disk is full"),
    "missing": FileNotFoundError(2, "No such file or directory", "nowhere.yaml"),
    "value": ValueError("--episodes must be >= 1"),
    "interrupt": KeyboardInterrupt(),
    "interrupted": Interrupted("committed episodes are kept"),
    "bug": KeyError("oops"),
}


def register_probe(sim_subparsers: argparse._SubParsersAction) -> None:
    parser = sim_subparsers.add_parser("probe", help="raise what --raise names")
    parser.add_argument("--raise", dest="what", choices=sorted(RAISES))
    parser.set_defaults(func=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    if args.what:
        raise RAISES[args.what]
    return 7


@pytest.fixture
def probe(monkeypatch):
    """`rl sim probe`, registered through the entry-point group like every other command."""
    real = cli.entry_points

    def with_probe(*, group: str):
        extra = EntryPoint("sim.probe", f"{__name__}:register_probe", cli.ENTRY_POINT_GROUP)
        return [*real(group=group), extra]

    monkeypatch.setattr(cli, "entry_points", with_probe)


def test_a_nested_command_registered_as_an_entry_point_runs_and_is_listed(probe, capsys):
    assert cli.main(["sim", "probe"]) == 7
    assert cli.main(["sim"]) == ExitCode.BAD_INPUT  # the group prints its help
    assert "probe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "    sim probe" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("what", "code", "text"),
    [
        ("corrupt", ExitCode.BAD_INPUT, "rl sim probe: error: demos.zarr/data/action/zarr.json"),
        ("full", ExitCode.DISK_FULL, "rl sim probe: error: demos.zarr: the disk is full"),
        ("missing", ExitCode.BAD_INPUT, "rl sim probe: error: No such file or directory: nowhere"),
        ("value", ExitCode.BAD_INPUT, "rl sim probe: error: --episodes must be >= 1"),
        ("interrupt", ExitCode.INTERRUPTED, "rl sim probe: interrupted"),
        ("interrupted", ExitCode.INTERRUPTED, "rl sim probe: interrupted: committed episodes"),
        ("bug", ExitCode.FAILURE, "rl sim probe: internal error: KeyError: 'oops' (a bug"),
    ],
)
def test_every_error_is_one_line_with_its_exit_code(probe, capsys, what, code, text):
    assert cli.main(["sim", "probe", "--raise", what]) == code
    err = capsys.readouterr().err
    assert err.startswith(text), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["-v", "sim", "probe"], ["sim", "probe", "-v"]])
def test_verbose_shows_the_traceback(probe, capsys, argv):
    assert cli.main([*argv, "--raise", "corrupt"]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "Traceback" in err and "run_probe" in err
    assert err.strip().splitlines()[-1].startswith("rl sim probe: error: ")


def test_help_lists_every_registered_command_and_the_exit_codes():
    result = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    parser = cli.build_parser()
    paths = [path for action in cli._subcommands(parser) for path, _, _ in cli._walk(action)]
    assert {
        "store",
        "store validate",
        "store import-bag",
        "sim view",
        "sim collect",
        "calibrate check",
        "train",
        "launch",
    } <= set(paths)
    lines = result.stdout.splitlines()
    for path in paths:
        row = next((line for line in lines if line.strip().startswith(path + " ")), None)
        assert row is not None and len(row.split()) > len(path.split()), (path, row)
    for code in ExitCode:
        assert any(line.split()[:1] == [str(int(code))] for line in lines), code


def test_usage_errors_exit_2_without_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["store", "list"])  # PATH missing: argparse's own usage error
    assert exit_info.value.code == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "usage: rl store list [-h]" in err  # named as typed, not after rl's own usage line
    assert err.strip().splitlines()[-1] == (
        "rl store list: error: the following arguments are required: path"
    )
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["store", "list", "demos.zarr", "--bogus"])
    assert exit_info.value.code == ExitCode.BAD_INPUT
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "rl store list: error: unrecognized arguments: --bogus"
    assert cli.main(["store"]) == ExitCode.BAD_INPUT  # a group without its subcommand
    assert "validate" in capsys.readouterr().err


def test_building_the_command_line_loads_neither_torch_nor_mujoco():
    probe = (
        "import sys; from robot_learning.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'mujoco') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"  # `rl --help` and bad arguments answer fast
