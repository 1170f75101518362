"""A store of many short episodes: commit, open, list and validate times, and file counts.

Records ``--episodes`` episodes of ``--steps`` steps (3 cameras 96x128 JPEG, state and
action), reporting commit time as the store grows (first and last hundred commits), then
the time to open a reader and a writer, to list every episode (``rl store list``), to
validate metadata only (``--quick``) and everything, and the files the store holds.

    python -m benchmarks.store_scale [--episodes 10000] [--steps 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.synthetic_frames import color_frames
from robot_learning.store import Codec, KeySpec, StoreReader, StoreSchema, StoreWriter
from robot_learning.store.validate import validate

CAMERAS = ("front", "wrist", "side")


def schema() -> StoreSchema:
    keys = {f"camera_{c}": KeySpec((96, 128, 3), "uint8", Codec.JPEG) for c in CAMERAS}
    keys["robot_state"] = KeySpec((8,), "float32")
    keys["action"] = KeySpec((8,), "float32")
    return StoreSchema(keys=keys)


def timed(what: str, fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    result = fn()
    print(f"  {what:<34} {time.perf_counter() - start:8.3f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    frames = color_frames(args.steps, 96, 128)
    zeros = np.zeros((args.steps, 8), np.float32)
    tmp = Path(tempfile.mkdtemp(prefix="store_scale_"))
    path = tmp / "scale.zarr"
    try:
        commits = []
        with StoreWriter(path, schema(), durable=False) as writer:
            for _ in tqdm(range(args.episodes), desc="episodes", unit="episode"):
                writer.begin_episode(source="teleop", task="scale")
                writer.append_batch(
                    {
                        **{f"camera_{c}": frames for c in CAMERAS},
                        "robot_state": zeros,
                        "action": zeros,
                    }
                )
                start = time.perf_counter()
                writer.commit(success=True)
                commits.append(time.perf_counter() - start)
        first, last = commits[:100], commits[-100:]
        print(f"{args.episodes:,} episodes x {args.steps} steps, 3 cameras 96x128 (durable=False)")
        print(f"  commit, first 100 episodes         {1000 * np.mean(first):8.1f} ms mean")
        print(
            f"  commit, last 100 episodes          {1000 * np.mean(last):8.1f} ms mean, "
            f"p99 {1000 * np.percentile(last, 99):.1f} ms"
        )
        reader = timed("open a reader", lambda: StoreReader(path))
        timed("open a writer (recovery check)", lambda: StoreWriter(path).close())
        timed(
            "list every episode",
            lambda: [reader.episode(e).info.task for e in reader.select(include_excluded=True)],
        )
        problems = timed("validate --quick", lambda: validate(path, check_data=False))
        problems += timed("validate (decode everything)", lambda: validate(path))
        files = [p for p in path.rglob("*") if p.is_file()]
        images = sum("camera_" in str(p) for p in files)
        print(
            f"  files: {len(files):,} ({images:,} image shards), "
            f"{sum(p.stat().st_size for p in files) / 1e6:,.1f} MB; problems {len(problems)}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
