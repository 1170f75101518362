"""Motion tracks -> end-effector motion, against the simulator's truth, versus pixel noise.

The scripted expert does ``lift`` in the workcell with its front and side cameras; at every
recorded step (10 Hz) the gripper's true keypoints (fingertips and the centre between the
finger roots, from the MuJoCo finger bodies) are projected through each episode's cameras,
Gaussian pixel noise is added, and ``track_geometry.tracks_to_chunk`` turns the next H steps'
tracks into a chunk from the current state, exactly as MT-pi's policy does. Each chunk target
is compared with the TCP pose the arm really reached at that step.

Run: ``python -m benchmarks.track_geometry`` (``--episodes``, ``--noise 0 0.5 1 2 4``).
Acceptance (issue 10): noise-free tracks recover the motion within 5 mm and 2 degrees.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from robot_learning.geometry import transform_error, transform_from_pose  # noqa: E402
from robot_learning.track_geometry import (  # noqa: E402
    CameraView,
    TrackGeometryError,
    tracks_to_chunk,
)

CAMERAS = ("front", "side")


@dataclass
class Recording:
    """One expert episode at the record rate, with what the tracks need."""

    ee_poses: np.ndarray  # (T, 7)
    widths: np.ndarray  # (T,)
    keypoints: np.ndarray  # (T, 3, 3) ground truth, base frame
    views: dict[str, CameraView]
    grasp: np.ndarray  # (T,) commanded gripper (0 open .. 1 closed)


def record_episodes(
    episodes: int,
    *,
    task: str = "lift",
    seed: int = 0,
    image_size: tuple[int, int] = (240, 320),
    record_hz: float = 10.0,
) -> list[Recording]:
    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.workcell import Workcell

    out = []
    with Workcell(task=task, seed=seed, cameras=CAMERAS, image_size=image_size) as workcell:
        every = round(1.0 / (record_hz * workcell.control_period_s))
        for i in range(episodes):
            workcell.reset(seed + i)
            views = {
                n: CameraView(n, workcell.camera(n).intrinsics, workcell.camera(n).extrinsics)
                for n in CAMERAS
            }
            rows: list[tuple] = []

            def on_step(step, state, command, target, rows=rows):
                if step % every == 0:
                    rows.append(
                        (
                            state.ee_pose_vector(),
                            state.gripper_width_m,
                            workcell.true_gripper_keypoints(),
                            float(target.gripper_closed),
                        )
                    )

            run_episode(workcell, seed=seed + i, on_step=on_step)
            ee, width, points, grasp = (np.asarray(v) for v in zip(*rows, strict=True))
            out.append(Recording(ee, width, points, views, grasp.astype(np.float64)))
    return out


def chunk_errors(
    recordings: list[Recording],
    noise_px: float,
    *,
    horizon: int = 16,
    rng: np.random.Generator | None = None,
    stride: int = 1,
    rotation_smoothing_degree: int | None = None,
) -> dict[str, np.ndarray | int]:
    """Translation (mm) and rotation (deg) error of every chunk target against the truth."""
    rng = rng or np.random.default_rng(0)
    trans, rot, failed, chunks = [], [], 0, 0
    for rec in recordings:
        for t in range(0, len(rec.ee_poses) - horizon, stride):
            future = rec.keypoints[t + 1 : t + 1 + horizon]
            tracks = {}
            for name, view in rec.views.items():
                pixels = view.project(future.reshape(-1, 3)).reshape(horizon, -1, 2)
                tracks[name] = pixels + rng.normal(0.0, noise_px, pixels.shape)
            chunks += 1
            try:
                chunk, _ = tracks_to_chunk(
                    tracks,
                    rec.grasp[t + 1 : t + 1 + horizon],
                    rec.views,
                    ee_pose=rec.ee_poses[t],
                    gripper_width_m=float(rec.widths[t]),
                    time_s=0.0,
                    period_s=0.1,
                    max_reprojection_px=max(4.0, 4.0 * noise_px),
                    rotation_smoothing_degree=rotation_smoothing_degree,
                )
            except TrackGeometryError:
                failed += 1
                continue
            for i in range(len(chunk)):
                truth = transform_from_pose(
                    rec.ee_poses[t + 1 + i][:3], rec.ee_poses[t + 1 + i][3:]
                )
                got = transform_from_pose(chunk.positions[i], chunk.quaternions[i])
                dt, dr = transform_error(got, truth)
                trans.append(1e3 * dt)
                rot.append(np.degrees(dr))
    return {
        "translation_mm": np.asarray(trans),
        "rotation_deg": np.asarray(rot),
        "failed": failed,
        "chunks": chunks,
    }


def format_row(noise: float, errors: dict) -> str:
    t, r = errors["translation_mm"], errors["rotation_deg"]
    return (
        f"{noise:>8.1f} | {np.median(t):6.2f} {np.percentile(t, 95):6.2f} {t.max():7.2f} | "
        f"{np.median(r):6.3f} {np.percentile(r, 95):6.3f} {r.max():7.3f} | "
        f"{errors['failed']:>4}/{errors['chunks']}"
    )


HEADER = (
    f"{'noise px':>8} | {'translation mm':^22} | {'rotation deg':^22} | chunks\n"
    f"{'':>8} | {'median':>6} {'p95':>6} {'max':>7} | {'median':>6} {'p95':>6} "
    f"{'max':>7} | failed"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--task", default="lift")
    parser.add_argument("--horizon", type=int, default=16, help="chunk steps (10 Hz)")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0])
    parser.add_argument(
        "--smoothing",
        type=int,
        nargs="+",
        default=[0, 3],
        help="polynomial degrees of the chunk's rotation smoothing to compare (0: off)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    recordings = record_episodes(args.episodes, task=args.task)
    steps = sum(len(r.ee_poses) for r in recordings)
    print(
        f"{args.episodes} {args.task} episodes, {steps} steps at 10 Hz, cameras "
        f"{'+'.join(CAMERAS)} at 240x320, horizon {args.horizon} steps "
        f"({time.perf_counter() - start:.0f} s to record)"
    )
    for degree in args.smoothing:
        print(f"\nrotation smoothing: {f'polynomial of degree {degree}' if degree else 'off'}")
        print(HEADER)
        for noise in args.noise:
            errors = chunk_errors(
                recordings, noise, horizon=args.horizon, rotation_smoothing_degree=degree or None
            )
            print(format_row(noise, errors), flush=True)


if __name__ == "__main__":
    main()
