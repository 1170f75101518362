"""``rl sim collect --embodiment hand``: simulated human videos of the hand stand-in.

The scripted hand demonstrator does the task while the arm is parked; the two fixed cameras
(front, side: what MT-pi triangulates from) film it. Each episode is a ``human_video``
episode with, per step, both cameras' images and capture times and the ground truth of the
hand's 21 landmarks in the base frame (``hand_landmarks_3d``, right hand; the left is NaN),
and the cameras' calibration in its metadata, as a real capture session records it (except
the ground truth, which only a simulator has).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_collection.sim_collect import check_record_rate, run_seeded_episodes, sim_episode_header
from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.keys import (
    BASE_FRAME,
    HAND_LANDMARKS_3D,
    HANDS,
    TIMESTAMP,
    camera_key,
    camera_timestamp_key,
)
from robot_learning.store import Codec, KeySpec, Source, StoreSchema, StoreWriter

log = logging.getLogger(__name__)

FIXED_CAMERAS = ("front", "side")
NUM_LANDMARKS = 21


def human_video_schema(
    cameras: Mapping[str, CameraIntrinsics],
    *,
    record_hz: float,
    jpeg_quality: int = 90,
    ground_truth: bool = True,
) -> StoreSchema:
    """Keys of a human-video episode: each camera's frames and capture times (+ the hand's
    ground truth in simulation)."""
    keys: dict[str, KeySpec] = {
        TIMESTAMP: KeySpec((), "float64", units="s, station clock", description="time of the step"),
    }
    for name, intr in cameras.items():
        keys[camera_key(name)] = KeySpec(
            (intr.height, intr.width, 3),
            "uint8",
            Codec.JPEG,
            quality=jpeg_quality,
            frame=f"{name}_optical",
        )
        keys[camera_timestamp_key(name)] = KeySpec((), "float64", units="s, station clock")
    if ground_truth:
        keys[HAND_LANDMARKS_3D] = KeySpec(
            (len(HANDS), NUM_LANDMARKS, 3),
            "float32",
            units="m",
            frame=BASE_FRAME,
            description="simulator ground truth of the hand landmarks (MediaPipe order, "
            "hands in keys.HANDS order); NaN for a hand not in the scene",
        )
    return StoreSchema(keys=keys, stream_rates_hz={"step": record_hz})


@dataclass(frozen=True)
class HandCollectConfig:
    """What ``rl sim collect --embodiment hand`` records."""

    task: str = "lift"
    episodes: int = 50
    store: Path = Path("human.zarr")
    cameras: tuple[str, ...] = FIXED_CAMERAS
    image_size: tuple[int, int] = (240, 320)
    record_hz: float = 10.0
    control_hz: float = 100.0
    noise_m_s: float = 0.02
    seed: int = 0
    task_options: dict[str, str] = field(default_factory=dict)
    operator: str = "scripted-hand"
    min_free_mb: float = 100.0

    def __post_init__(self) -> None:
        from robot_learning.sim.hand_demos import DEMONSTRATORS
        from robot_learning.sim.scene import CAMERA_SPECS

        if self.task not in DEMONSTRATORS:
            raise ValueError(
                f"no hand demonstrator for task {self.task!r}; known: {', '.join(DEMONSTRATORS)}"
            )
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        moving = [
            c
            for c in self.cameras
            if CAMERA_SPECS.get(c) is None or CAMERA_SPECS[c].parent_body is not None
        ]
        if moving:
            raise ValueError(
                f"cameras {moving}: human videos are filmed by fixed cameras "
                f"(sim: {', '.join(FIXED_CAMERAS)}); the wrist camera rides on the "
                "parked arm"
            )
        if len(self.cameras) < 2:
            raise ValueError(
                f"cameras {list(self.cameras)}: motion tracks triangulate from "
                "two views; give two fixed cameras"
            )
        check_record_rate(self.record_hz, self.control_hz)


@dataclass(frozen=True)
class HandCollectSummary:
    episodes: int
    successes: int
    steps: int
    first_episode: int
    wall_s: float


def collect_hand(config: HandCollectConfig, *, progress: bool = True) -> HandCollectSummary:
    """Run the hand demonstrator ``config.episodes`` times; commit each as human_video."""
    import time

    from robot_learning.sim.hand_demos import HandCommand, run_hand_episode
    from robot_learning.sim.workcell import Workcell

    started = time.monotonic()
    record_every = round(config.control_hz / config.record_hz)
    workcell = Workcell(
        task=config.task,
        seed=config.seed,
        cameras=config.cameras,
        image_size=config.image_size,
        control_hz=config.control_hz,
        human_hand=True,
        task_options=config.task_options,
    )
    with workcell:
        cameras = workcell.cameras
        schema = human_video_schema(
            {n: c.intrinsics for n, c in cameras.items()}, record_hz=config.record_hz
        )
        # allow_nonfinite: the absent left hand's landmarks are NaN by contract
        with StoreWriter(
            config.store, schema, allow_nonfinite=True, min_free_bytes=int(config.min_free_mb * 1e6)
        ) as writer:
            first = writer.num_episodes

            def record(seed: int) -> tuple[bool, int]:
                writer.begin_episode(
                    source=Source.HUMAN_VIDEO,
                    **sim_episode_header(
                        workcell,
                        seed,
                        task=config.task,
                        operator=config.operator,
                        noise_m_s=config.noise_m_s,
                        task_options=config.task_options,
                        embodiment="hand",
                        hand="right",
                    ),
                )

                def on_step(step: int, command: HandCommand) -> None:
                    if step % record_every:
                        return
                    landmarks = np.full((len(HANDS), NUM_LANDMARKS, 3), np.nan, np.float32)
                    landmarks[HANDS.index("right")] = workcell.hand.landmarks()
                    row = {TIMESTAMP: workcell.time_s, HAND_LANDMARKS_3D: landmarks}
                    for name, camera in cameras.items():
                        frame = camera.read()
                        row[camera_key(name)] = frame.color
                        row[camera_timestamp_key(name)] = frame.timestamp_s
                    writer.append(row)

                result = run_hand_episode(
                    workcell, seed=seed, noise_m_s=config.noise_m_s, on_step=on_step
                )
                writer.commit(success=result.success, notes={"sim_duration_s": result.duration_s})
                return result.success, -(-result.steps // record_every)

            def abandon() -> None:
                if writer.in_episode:
                    writer.discard()

            tally = run_seeded_episodes(
                workcell,
                first_seed=config.seed,
                episodes=config.episodes,
                desc=f"collect hand {config.task}",
                record=record,
                abandon=abandon,
                progress=progress,
            )
    return HandCollectSummary(
        tally.committed, tally.successes, tally.steps, first, time.monotonic() - started
    )
