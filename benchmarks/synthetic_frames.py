"""Camera-like test frames for the store benchmarks (deterministic, no simulator needed).

A table-top look: smooth gradients, a few saturated blocks and sensor noise (sigma 2), which
JPEG and the depth codec treat like real RealSense frames of a workcell.
"""

from __future__ import annotations

import numpy as np


def color_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [90 + 60 * x / width, 80 + 50 * y / height, 70 + 30 * (x + y) / (x + y).max()], axis=-1
    )
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for i in range(count):
        image = base.copy()
        for j, color in enumerate(([200, 40, 40], [40, 160, 60], [40, 60, 200])):
            cy = int(height * (0.3 + 0.2 * j) + 10 * np.sin(i / 5 + j))
            cx = int(width * (0.25 + 0.25 * j) + 15 * np.cos(i / 7 + j))
            image[
                max(cy - height // 12, 0) : cy + height // 12,
                max(cx - width // 16, 0) : cx + width // 16,
            ] = color
        image += rng.normal(0, 2, image.shape).astype(np.float32)
        frames[i] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


def depth_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    table = 700 + 400 * y / height
    frames = np.empty((count, height, width), dtype=np.uint16)
    for i in range(count):
        depth = table.copy()
        cy, cx = int(height * 0.5 + 20 * np.sin(i / 5)), int(width * 0.5)
        depth[cy - 40 : cy + 40, cx - 40 : cx + 40] -= 60
        depth += rng.normal(0, 2, depth.shape)
        depth[rng.random(depth.shape) < 0.01] = 0  # RealSense holes
        frames[i] = depth.astype(np.uint16)
    return frames
