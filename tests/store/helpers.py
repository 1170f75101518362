"""Deterministic episodes for store tests: content is a function of (episode seed, step)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import zarr

from robot_learning.store import Codec, KeySpec, StoreSchema
from robot_learning.store.frame_files import ShardFiles, encode_shard, frame_files

IMAGE_SHAPE = (48, 64, 3)


def schema() -> StoreSchema:
    return StoreSchema(
        keys={
            "camera_front": KeySpec(IMAGE_SHAPE, "uint8", Codec.JPEG, quality=90),
            "camera_depth": KeySpec(IMAGE_SHAPE[:2], "uint16", Codec.DEPTH, units="mm"),
            "robot_state": KeySpec((7,), "float32", units="rad"),
            "action": KeySpec((8,), "float64"),
            "timestamp": KeySpec((), "float64", units="s since epoch"),
        }
    )


def smooth_image(seed: int, step: int) -> np.ndarray:
    """A camera-like frame (gradients and a moving block) that JPEG compresses faithfully."""
    h, w, _ = IMAGE_SHAPE
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), (seed * 37) % 255)], axis=-1)
    top = (step * 3) % (h - 12)
    image[top : top + 12, 10:30] = [220, 40, 40]
    return image.astype(np.uint8)


def episode(seed: int, length: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "camera_front": np.stack([smooth_image(seed, t) for t in range(length)]),
        "camera_depth": rng.integers(300, 2000, (length, *IMAGE_SHAPE[:2]), dtype=np.uint16),
        "robot_state": rng.normal(size=(length, 7)).astype(np.float32),
        "action": rng.normal(size=(length, 8)),
        "timestamp": 1.7e9 + seed + np.arange(length) / 30.0,
    }


def lossless_digest(data: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in ("camera_depth", "robot_state", "action", "timestamp"):
        digest.update(np.ascontiguousarray(data[key]).tobytes())
    return digest.hexdigest()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def replace_frame_bytes(store: Path, key: str, row: int, data: bytes) -> Path:
    """Put ``data`` where frame ``row`` of ``key`` is stored (damage for tests); the file."""
    array = zarr.open_array(store / "data" / key, mode="r")
    files = frame_files(store, key, schema().keys[key], array)
    if not isinstance(files, ShardFiles):
        files.location(row).write_bytes(data)
        return files.location(row)
    shard, pos = divmod(row, files.frames_per_shard)
    frames = files.read_shard(shard)
    frames[pos] = data
    files.shard_path(shard).write_bytes(b"".join(encode_shard(frames, files.frames_per_shard)))
    return files.shard_path(shard)
