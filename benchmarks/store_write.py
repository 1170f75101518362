"""Sustained recording into the store: 3 color cameras + 1 depth at 30 Hz, state at 100 Hz.

Real-time paced, as a recorder would be: every 1/30 s the four frames are appended, and the
state stream gets its 100 Hz rows. Prints frames/s, CPU seconds per second of recording (all
threads of the process), bytes per frame, how far behind schedule appends ever fell, and the
commit latency (end of one episode to the next one being ready). Goals from the issues: the
3-camera stream under a quarter of one core; never falls behind; at most 1.5x the CPU time
that encoding alone takes (below).

The recorder's cost against pure encoding, in the same run:

- ``recorder_cpu_s``: CPU time of the whole process (``time.process_time``: every thread,
  user + system) from the first append to the end of the last commit: the paced loop,
  ``append``, the writer thread's encoding and file writes, commits and their syncs.
- ``pure_encode_cpu_s``: afterwards, exactly the frames that were recorded (same frames,
  same order) encoded with the store's own per-frame codec function (``FrameCodec.encode``
  built from the recorded arrays' codec chain: JPEG q90 4:4:4, blosc zstd bit-shuffle for
  depth) on one thread, as the writer encodes on its one background thread; no store, no
  copies, no files. Measured with ``time.thread_time`` of that thread.
- ``recorder_over_pure_encode``: the first divided by the second (goal: at most 1.5).

    python -m benchmarks.store_write [--seconds 30] [--episode-seconds 10] [--shard-frames 1]

``--shard-frames 1`` records in the layout of stores before sharding (a file per frame).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zarr

from benchmarks.synthetic_frames import color_frames, depth_frames
from robot_learning.store import Codec, KeySpec, StoreSchema, StoreWriter, layout
from robot_learning.store.frame_files import FrameCodec, frame_codecs
from robot_learning.store.layout import SHARD_FRAMES

CAMERAS = ("front", "wrist", "side")
H, W = 480, 640


def schema() -> StoreSchema:
    keys = {f"camera_{c}": KeySpec((H, W, 3), "uint8", Codec.JPEG, quality=90) for c in CAMERAS}
    keys["depth_front"] = KeySpec((H, W), "uint16", Codec.DEPTH, units="mm")
    keys["timestamp"] = KeySpec((), "float64", units="s since epoch")
    keys["robot_state"] = KeySpec((7,), "float64", stream="state", units="rad")
    keys["robot_ee_pose"] = KeySpec((7,), "float64", stream="state")
    keys["state_timestamp"] = KeySpec((), "float64", stream="state")
    return StoreSchema(keys=keys, stream_rates_hz={"step": 30.0, "state": 100.0})


def run(
    seconds: float,
    episode_seconds: float,
    out: Path,
    durable: bool,
    shard_frames: int = SHARD_FRAMES,
) -> dict[str, float]:
    color = color_frames(60, H, W)
    depth = depth_frames(60, H, W)
    period, state_period = 1 / 30, 1 / 100
    lags, commits, frames = [], [], 0
    with StoreWriter(out, schema(), durable=durable, shard_frames=shard_frames) as writer:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        next_frame = next_state = wall0
        episode_end = wall0 + episode_seconds
        writer.begin_episode(source="teleop", task="bench")
        while True:
            now = time.perf_counter()
            if now >= wall0 + seconds:
                break
            if now >= episode_end:
                t = time.perf_counter()
                writer.commit(success=True)
                writer.begin_episode(source="teleop", task="bench")
                commits.append(time.perf_counter() - t)
                # the next episode starts when the writer is ready: a fresh schedule
                next_frame = next_state = time.perf_counter()
                episode_end = next_frame + episode_seconds
                continue
            if now >= next_state:
                writer.append(
                    {
                        "robot_state": np.zeros(7),
                        "robot_ee_pose": np.zeros(7),
                        "state_timestamp": time.time(),
                    },
                    stream="state",
                )
                next_state += state_period
            if now >= next_frame:
                lags.append(now - next_frame)
                i = frames % len(color)
                writer.append(
                    {
                        **{
                            f"camera_{c}": color[(i + k) % len(color)]
                            for k, c in enumerate(CAMERAS)
                        },
                        "depth_front": depth[i],
                        "timestamp": time.time(),
                    }
                )
                frames += 1
                next_frame += period
            time.sleep(max(0.0, min(next_frame, next_state) - time.perf_counter()))
        t = time.perf_counter()
        writer.commit(success=True)
        commits.append(time.perf_counter() - t)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    files = sum(1 for p in out.rglob("*") if p.is_file())
    encode = pure_encode_cpu_s(out, color, depth, frames)
    return {
        "seconds": wall,
        "frame_sets_per_s": frames / wall,
        "cpu_s_per_s": cpu / wall,
        "color_bytes_per_frame": _bytes_under(out, "camera_") / (frames * len(CAMERAS)),
        "depth_bytes_per_frame": _bytes_under(out, "depth_") / frames,
        "raw_bytes_per_color_frame": H * W * 3,
        "max_lag_ms": 1000 * max(lags),
        "p99_lag_ms": 1000 * float(np.percentile(lags, 99)),
        "commit_ms_max": 1000 * max(commits),
        "episodes": len(commits),
        "store_mb": size / 1e6,
        "files_in_store_per_hour": files * 3600 / wall,
        "recorder_cpu_s": cpu,
        "pure_encode_cpu_s": encode,
        "recorder_over_pure_encode": cpu / encode,
    }


def pure_encode_cpu_s(store: Path, color: np.ndarray, depth: np.ndarray, frames: int) -> float:
    """CPU seconds to encode, on one thread and without a store, the frames ``run`` recorded."""
    root = zarr.open_group(zarr.storage.LocalStore(store), mode="r")
    spec = schema().keys
    codecs = {
        key: FrameCodec(spec[key], frame_codecs(root[layout.data_path(key)]), key)
        for key in (*(f"camera_{c}" for c in CAMERAS), "depth_front")
    }
    result: list[float] = []

    def encode_all() -> None:  # a thread like the writer's (blosc stays single-threaded)
        t = time.thread_time()
        for n in range(frames):
            i = n % len(color)
            for k, c in enumerate(CAMERAS):
                codecs[f"camera_{c}"].encode(color[(i + k) % len(color)])
            codecs["depth_front"].encode(depth[i])
        result.append(time.thread_time() - t)

    thread = threading.Thread(target=encode_all, name="pure-encode")
    thread.start()
    thread.join()
    return result[0]


def throughput(out: Path, frame_sets: int = 150, shard_frames: int = SHARD_FRAMES) -> float:
    """Unpaced: how many 3-camera + depth frame sets per second the writer can absorb."""
    color, depth = color_frames(30, H, W), depth_frames(30, H, W)
    with StoreWriter(out, schema(), durable=False, shard_frames=shard_frames) as writer:
        writer.begin_episode(source="teleop", task="bench")
        t = time.perf_counter()
        for i in range(frame_sets):
            writer.append(
                {
                    **{f"camera_{c}": color[i % 30] for c in CAMERAS},
                    "depth_front": depth[i % 30],
                    "timestamp": float(i),
                }
            )
        writer.commit(success=True)
        return frame_sets / (time.perf_counter() - t)


def _bytes_under(root: Path, prefix: str) -> int:
    return sum(
        p.stat().st_size
        for d in (root / "data").iterdir()
        if d.name.startswith(prefix)
        for p in d.rglob("*")
        if p.is_file()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--episode-seconds", type=float, default=10.0)
    parser.add_argument("--no-durable", action="store_true", help="skip os.sync at commit")
    parser.add_argument("--shard-frames", type=int, default=SHARD_FRAMES)
    parser.add_argument("--skip-unpaced", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="store_write_"))
    try:
        print(
            f"recording {args.seconds:.0f} s: 3x {W}x{H} JPEG q90 + {W}x{H} depth @ 30 Hz, "
            f"state @ 100 Hz, episodes of {args.episode_seconds:.0f} s, "
            f"{args.shard_frames} frames a file ...",
            flush=True,
        )
        result = run(
            args.seconds,
            args.episode_seconds,
            tmp / "paced.zarr",
            not args.no_durable,
            args.shard_frames,
        )
        for key, value in result.items():
            print(f"  {key:<26} {value:,.3f}")
        if args.skip_unpaced:
            return
        print("unpaced throughput ...", flush=True)
        rate = throughput(tmp / "unpaced.zarr", shard_frames=args.shard_frames)
        print(f"  max_frame_sets_per_s       {rate:,.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
