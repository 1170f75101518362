"""A small store with the keys a recording station and the hand tracker write (two color
cameras, depth, state, action, control source, motion tracks, a 100 Hz state stream), for
tests of what reads whole episodes: LeRobot export/import, ``rl store view``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_learning import keys
from robot_learning.store import Codec, KeySpec, StoreSchema, StoreWriter

SHAPE = (96, 128, 3)
RATE_HZ = 10.0
LENGTHS = (23, 40, 17)
TASKS = ("lift", "push", "lift")


def frame(seed: int, step: int) -> np.ndarray:
    h, w, _ = SHAPE
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack(
        [x * 255 / w, y * 255 / h, 128 + 60 * np.sin((x + 3 * step + seed) / 9)], axis=-1
    )
    top = (step * 3 + seed) % (h - 24)
    image[top : top + 24, 20:60] = [220, 40, 40]
    return image.astype(np.uint8)


def recording_store(path: Path) -> Path:
    """Keys as the recorder and the hand tracker write them, plus what export leaves out."""
    schema = StoreSchema(
        keys={
            keys.camera_key("front"): KeySpec(
                SHAPE, "uint8", Codec.JPEG, quality=95, frame="front_color_optical_frame"
            ),
            keys.camera_key("wrist"): KeySpec(SHAPE, "uint8", Codec.JPEG, quality=95),
            keys.depth_key("front"): KeySpec(SHAPE[:2], "uint16", Codec.DEPTH, units="mm"),
            keys.TIMESTAMP: KeySpec((), "float64", units="s, station clock"),
            keys.EE_POSE: KeySpec((7,), "float64", units="m, quaternion xyzw"),
            keys.GRIPPER_WIDTH: KeySpec((), "float64", units="m"),
            keys.ACTION: KeySpec((8,), "float64", units="m, quaternion xyzw, 1=closed"),
            keys.CONTROL_SOURCE: KeySpec((), "uint8"),
            keys.track_key("front"): KeySpec((3, 2), "float32", units="px"),
            keys.track_state_key("front"): KeySpec((3,), "uint8"),
            keys.STATE_TIMESTAMP: KeySpec((), "float64", stream=keys.STATE_STREAM),
        },
        stream_rates_hz={"step": RATE_HZ, keys.STATE_STREAM: 100.0},
    )
    rng = np.random.default_rng(7)
    with StoreWriter(path, schema, durable=False) as writer:
        for e, (n, task) in enumerate(zip(LENGTHS, TASKS, strict=True)):
            writer.begin_episode(
                source="intervention" if e == 1 else "teleop",
                task=task,
                operator=f"op{e}",
                calibration={"front": {"fx": 100.0 + e}},
                notes={"seed": e},
            )
            writer.append_batch(
                {
                    keys.camera_key("front"): np.stack([frame(e, t) for t in range(n)]),
                    keys.camera_key("wrist"): np.stack([frame(e + 50, t) for t in range(n)]),
                    keys.depth_key("front"): rng.integers(
                        300, 2000, (n, *SHAPE[:2]), dtype=np.uint16
                    ),
                    keys.TIMESTAMP: 1.7e9 + 100 * e + np.arange(n) / RATE_HZ + rng.normal(0, 1e-3),
                    keys.EE_POSE: rng.normal(size=(n, 7)),
                    keys.GRIPPER_WIDTH: rng.uniform(0, 0.08, n),
                    keys.ACTION: rng.normal(size=(n, 8)),
                    keys.CONTROL_SOURCE: rng.integers(0, 3, n).astype(np.uint8),
                    keys.track_key("front"): rng.uniform(0, 128, (n, 3, 2)).astype(np.float32),
                    keys.track_state_key("front"): rng.integers(0, 3, (n, 3)).astype(np.uint8),
                }
            )
            writer.append_batch(
                {keys.STATE_TIMESTAMP: np.arange(10 * n) / 100.0}, stream=keys.STATE_STREAM
            )
            writer.commit(success=e != 2)
    return path
