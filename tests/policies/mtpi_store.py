"""A small store with motion tracks for the MT-pi tests, written through the real StoreWriter.

Robot episodes: the scripted expert in the lockstep workcell, cameras front + side; the
track keys are written at record time from simulator ground truth (the finger bodies,
``Workcell.true_gripper_keypoints``, projected through each episode's cameras). The track
labelling tool (`rl tracks label`) is written elsewhere; this stands in for it here.

Human stand-in episodes (source ``human_video``, no robot keys): the same rollouts' frames
with hand-shaped keypoints (thumb tip and index tip on the fingertips, the knuckle 3 cm to
the side of the finger roots), as a hand tracker would report them. A stand-in, said so: the
simulated hand (another engineer's work) is not in this branch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_collection.hand_tracking.base import PointState
from data_collection.recorder import camera_calibration, recording_schema, track_key_specs
from robot_learning.keys import (
    ACTION,
    EE_POSE,
    GRIPPER_WIDTH,
    JOINT_POSITIONS,
    JOINT_VELOCITIES,
    TELEOP_TWIST,
    TIMESTAMP,
    TRACK_GRASP,
    TRACK_POINTS_3D,
    TRACK_TERMINAL,
    camera_key,
    camera_timestamp_key,
    track_key,
    track_state_key,
)
from robot_learning.store import Source, StoreWriter

CAMERAS = ("front", "side")
TERMINAL_S = 0.5  # the final half second of a successful episode is "done"


def record_track_store(
    path: Path,
    *,
    episodes: int = 3,
    human_episodes: int = 0,
    task: str = "lift",
    image_size: tuple[int, int] = (72, 96),
    seed: int = 0,
    tracks: bool = True,
    calibrated: bool = True,
) -> Path:
    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.workcell import Workcell

    record_hz = 10.0
    with Workcell(task=task, seed=seed, cameras=CAMERAS, image_size=image_size) as workcell:
        every = round(1.0 / (record_hz * workcell.control_period_s))
        intrinsics = {n: workcell.camera(n).intrinsics for n in CAMERAS}
        schema = recording_schema(
            intrinsics, record_hz=record_hz, control_hz=1.0 / workcell.control_period_s
        )
        if tracks:
            schema = type(schema)(
                keys={**schema.keys, **track_key_specs(CAMERAS)},
                stream_rates_hz=schema.stream_rates_hz,
            )
        with StoreWriter(path, schema) as writer:
            for i in range(episodes + human_episodes):
                episode_seed = seed + i
                workcell.reset(episode_seed)
                views = workcell.camera_views(CAMERAS)
                calibration = camera_calibration(
                    intrinsics,
                    {n: v.T_base_camera if calibrated else None for n, v in views.items()},
                    source={"kind": "simulator ground truth", "seed": episode_seed},
                )
                rows: list[dict] = []

                def on_step(step, state, command, target, rows=rows, views=views):
                    if step % every:
                        return
                    frames = workcell.render(CAMERAS)
                    points = workcell.true_gripper_keypoints()
                    row = {
                        TIMESTAMP: state.timestamp_s,
                        EE_POSE: state.ee_pose_vector(),
                        GRIPPER_WIDTH: state.gripper_width_m,
                        JOINT_POSITIONS: state.joint_positions,
                        JOINT_VELOCITIES: state.joint_velocities,
                        ACTION: target.as_vector(),
                        TELEOP_TWIST: command.twist,
                        "_points": points,
                        "_grasp": float(target.gripper_closed),
                    }
                    for name in CAMERAS:
                        row[camera_key(name)] = frames[name]
                        row[camera_timestamp_key(name)] = state.timestamp_s
                    rows.append(row)

                result = run_episode(workcell, seed=episode_seed, on_step=on_step)
                human = i >= episodes
                writer.begin_episode(
                    source=Source.HUMAN_VIDEO if human else Source.TELEOP,
                    task=task,
                    operator="test",
                    calibration=calibration,
                    notes={"seed": episode_seed},
                )
                end_s = rows[-1][TIMESTAMP]
                for row in rows:
                    points = row.pop("_points")
                    grasp = row.pop("_grasp")
                    if human:
                        row = {
                            k: v
                            for k, v in row.items()
                            if k == TIMESTAMP or k.startswith("camera_")
                        }
                        points = hand_points(points)
                    if tracks:
                        row[TRACK_POINTS_3D] = points.astype(np.float32)
                        row[TRACK_GRASP] = np.float32(grasp)
                        row[TRACK_TERMINAL] = np.uint8(
                            result.success and row[TIMESTAMP] > end_s - TERMINAL_S
                        )
                        for name, view in views.items():
                            row[track_key(name)] = view.project(points).astype(np.float32)
                            row[track_state_key(name)] = np.full(3, PointState.DETECTED, np.uint8)
                    writer.append(row)
                writer.commit(success=True)
    return path


def hand_points(gripper_points: np.ndarray) -> np.ndarray:
    """Thumb tip, index tip, knuckle: the fingertips, and a point 3 cm sideways of the finger
    roots (perpendicular to the fingers and to their closing line), as a hand's would be."""
    a, b, base = gripper_points
    closing = (a - b) / max(np.linalg.norm(a - b), 1e-9)
    along = (a + b) / 2 - base
    side = np.cross(closing, along / np.linalg.norm(along))
    return np.stack([a, b, base + 0.03 * side])
