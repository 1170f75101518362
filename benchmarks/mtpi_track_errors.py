"""How far a trained MT-pi's predicted tracks, and the chunks made from them, are from the
truth on a store's robot episodes: the offline check of whether a checkpoint is precise
enough to act before spending simulator time on it.

For every ``--every``-th step of each robot episode the policy's network predicts the next H
steps' tracks from the recorded frames and the gripper's keypoints (projected through the
episode's own calibration); each is compared with the recorded track, beside the error of
standing still. ``track_geometry.tracks_to_chunk`` turns the prediction into targets, exactly
as the policy does, and each target's position is compared with the pose the arm reached.
At 96x128 from 1.2-1.5 m one pixel is about 8 mm, so a policy acts well only once its
tracks are sub-pixel one step ahead.

Run: ``python -m benchmarks.mtpi_track_errors --checkpoint runs/mtpi --store tracks.zarr``
(``--num-samples K`` and ``--rotation-fit yaw`` try the inference options on the same
checkpoint). Training episodes are included: this measures fit, not generalization.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from policies.motion_tracks.data import episode_views
from policies.motion_tracks.policy import MotionTrackPolicy
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH, camera_name, track_key
from robot_learning.store import StoreReader
from robot_learning.track_geometry import (
    ROTATION_FITS,
    TrackGeometryError,
    gripper_keypoints,
    tracks_to_chunk,
)

AHEAD = (1, 5, 10, 15)  # steps ahead reported
ROBOT_SOURCES = ("teleop", "policy", "intervention")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--every", type=int, default=3, help="every n-th step starts a chunk")
    parser.add_argument("--num-samples", type=int, help="default: the checkpoint's")
    parser.add_argument("--rotation-fit", choices=ROTATION_FITS, help="default: the checkpoint's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    policy = MotionTrackPolicy.load(args.checkpoint)
    network, cameras = policy.network, list(policy.features.cameras)
    if args.num_samples:
        network.config = dataclasses.replace(network.config, num_samples=args.num_samples)
    config = dataclasses.replace(
        network.config, rotation_fit=args.rotation_fit or network.config.rotation_fit
    )
    horizon = config.horizon_steps(policy.features.rate_hz)
    reader = StoreReader(args.store)
    episodes = reader.select(source=ROBOT_SOURCES)
    if not episodes:
        raise SystemExit(f"{args.store}: no robot episodes to compare with")
    px, still, position = ({h: [] for h in AHEAD} for _ in range(3))
    fitted = refused = 0
    tracks_of = {c: track_key(camera_name(c)) for c in cameras}
    keys = [*cameras, *tracks_of.values(), EE_POSE, GRIPPER_WIDTH]
    with torch.no_grad():
        for episode in episodes:
            views = episode_views(reader, episode, cameras)
            data = reader.read_episode(episode, keys)
            poses, widths = data[EE_POSE], data[GRIPPER_WIDTH]
            for t in range(0, len(poses) - horizon, args.every):
                points = gripper_keypoints(poses[t], float(widths[t]))
                frames = torch.stack(
                    [
                        torch.from_numpy(np.ascontiguousarray(data[c][t])).permute(2, 0, 1)
                        for c in cameras
                    ]
                )
                current = torch.stack([torch.from_numpy(views[c].project(points)) for c in cameras])
                tracks, grasp, _ = network.predict_tracks(frames, current)
                for i, c in enumerate(cameras):
                    truth = data[tracks_of[c]]
                    for h in AHEAD:
                        if h <= horizon:
                            error = np.linalg.norm(tracks[i, h - 1].numpy() - truth[t + h], axis=-1)
                            px[h].append(float(error.mean()))
                            moved = np.linalg.norm(truth[t] - truth[t + h], axis=-1)
                            still[h].append(float(moved.mean()))
                try:
                    chunk, geometry = tracks_to_chunk(
                        {c: tracks[i].numpy() for i, c in enumerate(cameras)},
                        grasp.mean(0).numpy(),
                        views,
                        ee_pose=poses[t],
                        gripper_width_m=float(widths[t]),
                        time_s=0.0,
                        period_s=policy.features.period_s,
                        max_reprojection_px=config.max_reprojection_px,
                        rotation_smoothing_degree=config.rotation_smoothing_degree,
                        rotation_fit=config.rotation_fit,
                    )
                except TrackGeometryError:
                    refused += 1
                    continue
                fitted += 1
                for h in AHEAD:
                    if h <= geometry.steps_used:
                        miss = chunk.positions[h - 1] - poses[t + h, :3]
                        position[h].append(1e3 * float(np.linalg.norm(miss)))
    print(
        f"{args.checkpoint} on {len(episodes)} robot episodes of {args.store}, "
        f"num_samples {network.config.num_samples}, rotation_fit {config.rotation_fit}: "
        f"{fitted} chunks fitted, {refused} refused"
    )
    print(
        f"{'ahead':>5} {'track px median/p90':>20} {'standing still px':>18} "
        f"{'target mm median/p90':>21}"
    )
    for h in AHEAD:
        if px[h]:
            mm = position[h] or [float("nan")]
            print(
                f"{h:>5} {np.median(px[h]):>10.2f} / {np.percentile(px[h], 90):<7.2f} "
                f"{np.median(still[h]):>18.2f} {np.median(mm):>11.1f} / "
                f"{np.percentile(mm, 90):<7.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
