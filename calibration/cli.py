"""``rl calibrate intrinsics|handeye|extrinsics|check``: thin commands over the calibration
package. Every one runs on the simulated workcell (``--sim``: capture with the robot, then
calibrate, with the errors against the simulator's truth) or on a capture folder
(``--capture DIR``, see calibration/capture_dir.py), and shows progress while capturing.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from robot_learning.errors import CheckFailedError, ExitCode, InputError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    parser = subparsers.add_parser(
        "calibrate",
        help="camera calibration: intrinsics, hand-eye, camera-to-camera, check",
        description="Calibrate the workcell's cameras from ChArUco views (simulated or captured).",
    )
    children = parser.add_subparsers(dest="calibrate_command", metavar="STEP")
    specs = {
        "intrinsics": ("ChArUco intrinsics of each camera", run_intrinsics),
        "handeye": ("intrinsics + hand-eye of each camera; writes the workcell file", run_handeye),
        "extrinsics": ("camera-to-camera extrinsics of the fixed cameras", run_extrinsics),
        "check": (
            "the whole procedure against ground truth (--sim) or a file's cameras",
            run_check,
        ),
    }
    for name, (help_text, func) in specs.items():
        p = children.add_parser(name, help=help_text, description=help_text)
        _add_source_args(p)
        p.add_argument("--json", action="store_true", help="print one JSON object")
        if name in ("handeye", "check"):
            p.add_argument("--out", type=Path, help="calibration YAML (default: the workcell's)")
            p.add_argument(
                "--force", action="store_true", help="save even when the held-out-view check fails"
            )
        if name == "check":
            p.add_argument("--file", type=Path, help="check this calibration file's cameras")
            p.add_argument(
                "--camera",
                action="append",
                default=[],
                metavar="NAME=SERIAL",
                help="a camera the file must describe (repeatable)",
            )
            p.add_argument("--save", action="store_true", help="also save the result (--sim)")
        p.set_defaults(func=func)
    return children


def _pair(text: str) -> tuple[float, float]:
    try:
        mm, deg = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be MM,DEG, e.g. 0.1,0.01") from None
    return mm, deg


def _robot_pose_std(args: argparse.Namespace) -> tuple[float, float]:
    from calibration.procedure import ROBOT_POSE_STD

    return args.robot_pose_std or ROBOT_POSE_STD


def _add_source_args(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--sim", action="store_true", help="capture in the simulated workcell")
    source.add_argument("--capture", type=Path, help="a capture folder to calibrate from")
    p.add_argument("--views", type=int, default=20, help="--sim: poses per camera (15-25)")
    p.add_argument("--seed", type=int, default=0, help="--sim: workcell seed")
    p.add_argument("--size", default="480x640", help="--sim: HEIGHTxWIDTH of every camera")
    p.add_argument(
        "--cameras",
        nargs="+",
        default=["wrist", "front", "side"],
        help="--sim: cameras to calibrate (wrist on the hand, others fixed)",
    )
    p.add_argument("--save-capture", type=Path, help="--sim: keep the images and poses here")
    p.add_argument("--workcell", default="sim", help="workcell name of the calibration file")
    p.add_argument("--robot-pose-std", type=_pair, default=None, metavar="MM,DEG",
                   help="accuracy of the robot's reported hand poses, per axis (default 0.1,0.01;"
                        " 0,0 takes them as exact)")  # fmt: skip


# -- the commands -----------------------------------------------------------------------------
def run_intrinsics(args: argparse.Namespace) -> int:
    if args.sim:
        run = _sim_run(args)
        out = {name: {**r.intrinsics.summary(), **_truth(run, name, "focal", "principal")}
               for name, r in run.reports.items()}  # fmt: skip
    else:
        from calibration.intrinsics import calibrate_intrinsics

        capture = _open_capture(args)
        out = {}
        for name in capture.cameras:
            views = capture.views(name)
            out[name] = calibrate_intrinsics([v.detection for v in views], camera=name).summary()
    _print(out, args.json)
    return 0


def run_handeye(args: argparse.Namespace) -> int:
    if args.sim:
        run = _sim_run(args)
        reports, calibration = run.reports, run.calibration
        out = {name: {**r.calibration.residuals["hand_eye"], **_truth(run, name, "handeye")}
               for name, r in reports.items()}  # fmt: skip
    else:
        calibration, reports = _calibrate_capture(args, pairs=False)
        out = {n: r.calibration.residuals["hand_eye"] for n, r in reports.items()}
    path = _save(calibration, args)
    out["saved"] = str(path)
    _print(out, args.json)
    return 0


def run_extrinsics(args: argparse.Namespace) -> int:
    if args.sim:
        run = _sim_run(args)
        pairs = run.calibration.camera_pairs
    else:
        calibration, _ = _calibrate_capture(args, pairs=True)
        pairs = calibration.camera_pairs
    if not pairs:
        raise InputError("needs two or more fixed cameras that saw the board together")
    _print(pairs, args.json)
    return 0


def run_check(args: argparse.Namespace) -> int:
    from calibration.calibration_file import CalibrationFileError, WorkcellCalibration

    if args.file is not None:
        calibration = WorkcellCalibration.load(args.file)
        serials = dict(item.partition("=")[::2] for item in args.camera)
        try:
            calibration.check_cameras(serials, where=str(args.file))
        except CalibrationFileError as exc:
            raise CheckFailedError(str(exc)) from exc
        out = {"file": str(args.file), "age_days": calibration.age_days(),
               "fingerprint": calibration.fingerprint(),
               "cameras": {n: c.residuals for n, c in calibration.cameras.items()}}  # fmt: skip
        _print(out, args.json)
        return 0
    if not args.sim:
        calibration, reports = _calibrate_capture(args, pairs=True)
        out = {n: r.calibration.residuals for n, r in reports.items()}
        _print(out, args.json)
        passed = all(r.calibration.holdout_passed for r in reports.values())
        return ExitCode.OK if passed else ExitCode.FAILURE
    run = _sim_run(args)
    if args.save:
        _save(run.calibration, args)
    _print(run.summary(), args.json)
    return 0


# -- helpers ----------------------------------------------------------------------------------
def _save(calibration: Any, args: argparse.Namespace) -> Path:
    """Save unless the held-out-view check failed (then exit 1 unless --force)."""
    from calibration.calibration_file import CalibrationFileError

    try:
        return calibration.save(args.out, force=args.force)
    except CalibrationFileError as exc:
        raise CheckFailedError(str(exc)) from exc


def _sim_run(args: argparse.Namespace) -> Any:
    from calibration.sim import SimCalibrationConfig, run_sim_calibration
    from robot_learning.sim.cli import parse_image_size

    wrist = tuple(c for c in args.cameras if c == "wrist")
    fixed = tuple(c for c in args.cameras if c != "wrist")
    config = SimCalibrationConfig(
        seed=args.seed,
        image_size=parse_image_size(args.size),
        views=args.views,
        wrist_cameras=wrist,
        fixed_cameras=fixed,
        robot_pose_std=_robot_pose_std(args),
    )
    run = run_sim_calibration(config, progress=not args.json, save_capture=args.save_capture)
    run.calibration.workcell = args.workcell
    return run


def _truth(run: Any, name: str, *prefixes: str) -> dict[str, float]:
    errors = run.errors[name]
    return {f"true_{k}": v for k, v in errors.items() if k.startswith(prefixes)}


def _open_capture(args: argparse.Namespace) -> Any:
    from calibration.capture_dir import CaptureDir

    if args.capture is None:
        raise InputError("give --sim or --capture DIR")
    return CaptureDir.open(args.capture)


def _calibrate_capture(args: argparse.Namespace, *, pairs: bool) -> tuple[Any, dict]:
    """Calibrate every camera of a capture folder (hand-eye needs its hand poses)."""
    from calibration.intrinsics import CalibrationInputError
    from calibration.procedure import calibrate_camera, calibrate_pairs, workcell_calibration

    capture = _open_capture(args)
    if not capture.has_poses():
        raise CalibrationInputError(
            f"{args.capture}: no hand poses were logged (a hand-held capture); hand-eye needs "
            "a robot capture. `rl calibrate intrinsics` works on this one"
        )
    reports = {}
    for name, info in capture.cameras.items():
        reports[name] = calibrate_camera(
            name, capture.views(name), mount=info["mount"], serial=info.get("serial", name),
            robot_pose_std=_robot_pose_std(args),
        )  # fmt: skip
    pair_results = calibrate_pairs(reports) if pairs else {}
    return workcell_calibration(args.workcell, reports, pair_results, capture.board), reports


def _print(out: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(out, default=float))
        return
    for key, value in out.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {_fmt(v)}")
        else:
            print(f"{key}: {_fmt(value)}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
