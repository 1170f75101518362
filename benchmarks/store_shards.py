"""Choosing frames per shard: files written, append speed, commit latency and random reads.

For each shard size (1 = the per-frame layout of stores before sharding), records
``--episodes`` episodes of ``--episode-seconds`` of 3 cameras 640x480 JPEG q90 at 30 Hz
(unpaced, as fast as the writer absorbs them), then reads random single frames back.
Prints, per size: files written per hour of recording (every file created or atomically
replaced while recording, scaled from the episodes recorded: image files, and all files
with the metadata a commit rewrites; creating and closing the store, once a session, are
left out), files left in the store per hour, bytes written per byte of frames stored
(tail rewrites), frame sets appended per second, the slowest commit (the tail shards are
rewritten there), and random-access reads per second (bytes only, and decoded).

    python -m benchmarks.store_shards [--sizes 1,32,64,128,256] [--episodes 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.synthetic_frames import color_frames
from robot_learning.store import Codec, KeySpec, StoreReader, StoreSchema, StoreWriter

CAMERAS = ("front", "wrist", "side")
H, W = 480, 640
RATE_HZ = 30


class FileWrites:
    """Counts files written: every atomic write (ours and zarr's) ends in one os.replace."""

    def __init__(self) -> None:
        self.count = self.images = 0
        self._original = os.replace

    def __enter__(self) -> FileWrites:
        def counting(source: str, target: str, **kwargs: object) -> None:
            self.count += 1
            self.images += "/data/camera_" in str(target)
            self._original(source, target, **kwargs)

        os.replace = counting
        return self

    def __exit__(self, *exc: object) -> None:
        os.replace = self._original


def schema() -> StoreSchema:
    keys = {f"camera_{c}": KeySpec((H, W, 3), "uint8", Codec.JPEG, quality=90) for c in CAMERAS}
    keys["timestamp"] = KeySpec((), "float64", units="s since epoch")
    keys["robot_state"] = KeySpec((7,), "float64", units="rad")
    return StoreSchema(keys=keys, stream_rates_hz={"step": float(RATE_HZ)})


def record(path: Path, shard_frames: int, episodes: int, steps: int) -> dict[str, float]:
    color = color_frames(45, H, W)
    commits = []
    with StoreWriter(path, schema(), durable=False, shard_frames=shard_frames) as writer:
        start = time.perf_counter()
        with FileWrites() as writes:
            for _ in range(episodes):
                writer.begin_episode(source="teleop", task="bench")
                for t in range(steps):
                    writer.append(
                        {
                            **{
                                f"camera_{c}": color[(t + 15 * k) % len(color)]
                                for k, c in enumerate(CAMERAS)
                            },
                            "timestamp": t / RATE_HZ,
                            "robot_state": np.zeros(7),
                        }
                    )
                t0 = time.perf_counter()
                writer.commit(success=True)
                commits.append(time.perf_counter() - t0)
            written = sum(writer._frames[f"camera_{c}"].bytes_written for c in CAMERAS)
        wall = time.perf_counter() - start
    hours = episodes * steps / RATE_HZ / 3600
    files = sum(1 for p in path.rglob("*") if p.is_file())
    stored = sum(
        p.stat().st_size for p in (path / "data").rglob("*") if p.is_file() and "camera_" in str(p)
    )
    return {
        "files_written_per_hour": writes.count / hours,
        "image_files_written_per_hour": writes.images / hours,
        "files_in_store_per_hour": files / hours,
        "write_amplification": written / stored,
        "frame_sets_per_s": episodes * steps / wall,
        "commit_ms_max": 1000 * max(commits),
    }


def random_reads(path: Path, reads: int) -> dict[str, float]:
    reader = StoreReader(path)
    rows = np.random.default_rng(0).integers(0, reader.num_steps, reads).tolist()
    reader.read_frames("camera_front", rows[:1])
    files = reader._frames["camera_front"]  # the accessor read_frames uses
    start = time.perf_counter()
    for row in rows:
        files.read_encoded(row)
    raw = reads / (time.perf_counter() - start)
    out = np.empty((1, H, W, 3), dtype=np.uint8)
    start = time.perf_counter()
    for row in rows:
        reader.read_frames("camera_front", [row], out=out)
    decoded = reads / (time.perf_counter() - start)
    return {"random_reads_bytes_per_s": raw, "random_reads_decoded_per_s": decoded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,32,64,128,256")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--episode-seconds", type=float, default=10.0)
    parser.add_argument("--reads", type=int, default=600)
    args = parser.parse_args()
    steps = int(args.episode_seconds * RATE_HZ)
    print(
        f"{args.episodes} episodes of {args.episode_seconds:.0f} s, 3x {W}x{H} JPEG q90 "
        f"@ {RATE_HZ} Hz, then {args.reads} random single-frame reads",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="store_shards_"))
    baseline = None
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            path = tmp / f"s{size}.zarr"
            result = {**record(path, size, args.episodes, steps), **random_reads(path, args.reads)}
            baseline = baseline or result
            images, every = (
                result[k] for k in ("image_files_written_per_hour", "files_written_per_hour")
            )
            print(
                f"  frames/shard {size:>4}: files written/h: images {images:>8,.0f} (1/"
                f"{baseline['image_files_written_per_hour'] / images:.0f} of per-frame), "
                f"all {every:>8,.0f} (1/{baseline['files_written_per_hour'] / every:.0f}), "
                f"{result['files_in_store_per_hour']:>8,.0f} files kept/h, "
                f"{result['write_amplification']:.2f} B written per B stored, "
                f"{result['frame_sets_per_s']:6.1f} frame sets/s appended, "
                f"commit max {result['commit_ms_max']:6.1f} ms, random reads "
                f"{result['random_reads_bytes_per_s']:>7,.0f}/s bytes, "
                f"{result['random_reads_decoded_per_s']:>5,.0f}/s decoded",
                flush=True,
            )
            shutil.rmtree(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
