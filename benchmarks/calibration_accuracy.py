"""Hand-eye accuracy against the simulator's truth: how it grows with fewer views and with
noise on the robot's reported poses, and how long the procedure takes.

Every run is the full procedure of ``rl calibrate check --sim`` (robot visits the poses,
480x640 images through a distorting, noisy lens, intrinsics, hand-eye with joint refinement,
held-out check) for the wrist camera (eye-in-hand) and the front camera (eye-to-hand).
Figures are medians (and maxima) over seeds. Run: ``python -m benchmarks.calibration_accuracy``.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("MUJOCO_GL", "egl")

from calibration.intrinsics import CalibrationInputError  # noqa: E402
from calibration.procedure import ROBOT_POSE_STD  # noqa: E402
from calibration.sim import SimCalibrationConfig, run_sim_calibration  # noqa: E402

CAMERAS = ("wrist", "front")


def measure(config: SimCalibrationConfig, seeds: list[int]) -> dict[str, list[dict]]:
    """Errors per camera, one dict per seed, plus the run times."""
    out: dict[str, list] = {name: [] for name in CAMERAS}
    out["seconds"], out["failed"] = [], []
    for seed in seeds:
        try:
            run = run_sim_calibration(
                SimCalibrationConfig(**{**config.__dict__, "seed": seed}), progress=False
            )
        except CalibrationInputError as exc:  # too few views seen: part of the answer
            out["failed"].append(f"seed {seed}: {exc}")
            continue
        for name in CAMERAS:
            out[name].append(run.errors[name])
        out["seconds"].append(run.seconds)
    return out


def row(label: str, results: dict[str, list[dict]]) -> str:
    cells = [f"{label:>20}"]
    if not results["seconds"]:
        return f"{label:>20} | every seed failed: {results['failed'][0]}"
    for name in CAMERAS:
        t = [e["handeye_translation_error_mm"] for e in results[name]]
        r = [e["handeye_rotation_error_deg"] for e in results[name]]
        cells.append(
            f"{statistics.median(t):6.2f} ({max(t):5.2f}) mm {statistics.median(r):5.3f} "
            f"({max(r):5.3f}) deg"
        )
    cells.append(f"{statistics.median(results['seconds']):6.1f} s")
    if results["failed"]:
        cells.append(f"{len(results['failed'])} seed(s) failed: too few views")
    return " | ".join(cells)


def header(first: str) -> str:
    cams = " | ".join(f"{n + ': median (max)':^34}" for n in CAMERAS)
    return f"{first:>20} | {cams} | run time"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--views", type=int, nargs="+", default=[6, 8, 10, 15, 20, 25])
    parser.add_argument("--noise", nargs="+", default=["0,0", "0.2,0.02", "0.5,0.05", "1,0.1"],
                        help="robot pose noise as MM,DEG (std per axis)")  # fmt: skip
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    base = SimCalibrationConfig(wrist_cameras=("wrist",), fixed_cameras=("front",))

    print(f"hand-eye error against truth, {len(seeds)} seeds, 480x640, distortion + noise")
    print("\nviews per camera (no robot pose noise)")
    print(header("views"))
    for views in args.views:
        config = SimCalibrationConfig(**{**base.__dict__, "views": views})
        print(row(str(views), measure(config, seeds)), flush=True)

    print("\nrobot pose noise (20 views per camera; std per axis of the reported hand pose);")
    print("'bundle': the default refinement, hand poses corrected within 0.1 mm, 0.01 deg;")
    print("'exact': hand poses taken as exact")
    print(header("mm, deg"))
    for text in args.noise:
        mm, deg = (float(v) for v in text.split(","))
        for label, assumed in (("bundle", ROBOT_POSE_STD), ("exact", (0.0, 0.0))):
            config = SimCalibrationConfig(**{
                **base.__dict__, "views": 20, "robot_pose_noise_mm": mm,
                "robot_pose_noise_deg": deg, "robot_pose_std": assumed,
            })  # fmt: skip
            print(row(f"{mm:g}, {deg:g} {label}", measure(config, seeds)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
