"""LeRobotDataset export and import of a collected store: speed, bytes, frame fidelity.

Collects scripted-expert lift episodes in the simulated workcell (2 cameras, the
``rl sim collect`` defaults), exports them with ``rl store export-lerobot`` (AV1, crf 30,
LeRobot's settings), imports the export back, and prints: export and import time and
frames/s, bytes of the store, the dataset (videos, parquet) and the re-imported store, and
the PSNR of the exported video frames against the stored frames.

    python -m benchmarks.lerobot_export [--episodes 5] [--size 240x320]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.codecs import psnr


def _bytes(path: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--size", default="240x320", help="camera HxW")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    from data_collection.sim_collect import CollectConfig, collect
    from robot_learning.store import StoreReader
    from robot_learning.store.lerobot_export import export_lerobot
    from robot_learning.store.lerobot_import import import_lerobot
    from robot_learning.store.video import decode_frames

    h, w = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "demos.zarr"
        collect(
            CollectConfig(episodes=args.episodes, store=store, image_size=(h, w)), progress=False
        )
        reader = StoreReader(store)
        frames = reader.num_steps
        cameras = [
            k for k in reader.schema.keys if k.startswith("camera_") and reader.spec(k).is_image
        ]
        started, cpu = time.perf_counter(), time.process_time()
        export_lerobot(store, root / "dataset", progress=False)
        export_s, export_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        import_lerobot(root / "dataset", root / "back.zarr", progress=False)
        import_s = time.perf_counter() - started
        scores = []
        for key in cameras:
            video = next((root / "dataset/videos").glob(f"*{key.removeprefix('camera_')}/*/*"))
            decoded = [f for _, f in decode_frames(video)]
            stored = reader.read_frames(key, list(range(frames)))
            scores += [psnr(a, b) for a, b in zip(stored, decoded, strict=True)]
        print(
            f"{args.episodes} lift episodes, {frames} steps, {len(cameras)} cameras {h}x{w} "
            f"at {reader.schema.stream_rates_hz.get('step')} Hz"
        )
        print(
            f"export: {export_s:.1f} s wall, {export_cpu:.1f} CPU-s (this process), "
            f"{frames * len(cameras) / export_s:.0f} camera frames/s"
        )
        print(
            f"import: {import_s:.1f} s wall, {frames * len(cameras) / import_s:.0f} camera frames/s"
        )
        store_mb, data_mb = _bytes(store) / 1e6, _bytes(root / "dataset") / 1e6
        print(
            f"bytes: store {store_mb:.2f} MB (JPEG q90 frames, 100 Hz state stream "
            f"included); dataset {data_mb:.2f} MB = videos "
            f"{_bytes(root / 'dataset', '*.mp4') / 1e6:.2f} MB + parquet "
            f"{_bytes(root / 'dataset', '*.parquet') / 1e6:.2f} MB + json "
            f"{_bytes(root / 'dataset', '*.json') / 1e6:.2f} MB; "
            f"re-imported store {_bytes(root / 'back.zarr') / 1e6:.2f} MB"
        )
        print(
            f"video frames vs stored frames: PSNR mean {np.mean(scores):.1f} dB, "
            f"min {np.min(scores):.1f} dB ({len(scores)} frames)"
        )


if __name__ == "__main__":
    main()
