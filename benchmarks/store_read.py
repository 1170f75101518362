"""Random-access training reads: samples/s through SequenceDataset + DataLoader.

2 cameras 240x320 JPEG q90, obs horizon 2, action horizon 16, shuffled, with 0, 1 and 2
loader workers, on the same episodes stored sharded (the current layout) and a file per
frame (stores from before sharding), and (``s3``) the sharded store uploaded to an S3
protocol server on 127.0.0.1 (moto, in this process), measured alternately. Goals from the
issue: at least 1,000 samples/s with 2 workers; sharding must not read slower; from the
object store with 2 workers at least half of local. The remote reader reads ahead whole
shards into a cache of ``--remote-cache-mb`` per worker (0: range reads only); with
``--workers 0`` the requests and bytes it fetched per sample are printed. Before and after
the reads with N workers, the decode limit is measured in the same run: max(N, 1) processes
decoding the store's frames (the same random frames, into a reused buffer) and nothing
else; a sample needs 4 decodes (2 cameras x obs horizon 2).

    python -m benchmarks.store_read [--samples 4000] [--layouts sharded,per-frame,s3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.synthetic_frames import color_frames
from robot_learning.store import Codec, KeySpec, StoreSchema, StoreWriter
from robot_learning.store.layout import SHARD_FRAMES
from robot_learning.store.sampler import SequenceDataset, make_loader

H, W = 240, 320


LAYOUTS = {"sharded": SHARD_FRAMES, "per-frame": 1}


def s3_copy(local: Path) -> str:
    """Upload ``local`` to a moto S3 server on 127.0.0.1 (left running); the URL."""
    import logging
    import os

    import fsspec
    from moto.server import ThreadedMotoServer

    from robot_learning.store.remote import upload

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    fsspec.filesystem("s3").mkdir("bench")
    url = "s3://bench/read.zarr"
    print(f"  {upload(local, url).message()}", flush=True)
    # The server's own ceiling: small range requests, all in flight at once.
    fs = fsspec.filesystem("s3")
    shard = next(p for p in fs.find(f"{url}/data/camera_front") if "/c/" in p)
    start = time.perf_counter()
    fs.cat_ranges([shard] * 400, list(range(0, 4000, 10)), list(range(100, 4100, 10)))
    print(
        f"  moto on 127.0.0.1 serves {400 / (time.perf_counter() - start):,.0f} range "
        f"requests/s to one process",
        flush=True,
    )
    return url


def build_store(path: Path, episodes: int, steps: int, shard_frames: int = SHARD_FRAMES) -> None:
    schema = StoreSchema(
        keys={
            "camera_front": KeySpec((H, W, 3), "uint8", Codec.JPEG, quality=90),
            "camera_wrist": KeySpec((H, W, 3), "uint8", Codec.JPEG, quality=90),
            "robot_state": KeySpec((7,), "float32"),
            "action": KeySpec((8,), "float32"),
        }
    )
    frames = color_frames(steps, H, W)
    rng = np.random.default_rng(0)
    with StoreWriter(path, schema, durable=False, shard_frames=shard_frames) as writer:
        for _ in range(episodes):
            writer.begin_episode(source="teleop", task="bench")
            writer.append_batch(
                {
                    "camera_front": frames,
                    "camera_wrist": frames[::-1],
                    "robot_state": rng.normal(size=(steps, 7)).astype(np.float32),
                    "action": rng.normal(size=(steps, 8)).astype(np.float32),
                }
            )
            writer.commit(success=True)


def _decode_for(blobs: list[bytes], seconds: float, start: float) -> int:
    import imagecodecs

    out = np.empty((H, W, 3), dtype=np.uint8)
    while time.time() < start:  # all processes begin together
        time.sleep(0.001)
    count, stop = 0, start + seconds
    while time.time() < stop:
        for blob in blobs:
            imagecodecs.jpeg8_decode(blob, out=out)
        count += len(blobs)
    return count


def decode_limit(path: Path, processes: int, seconds: float = 2.0) -> float:
    """Samples/s that decoding alone allows with ``processes`` processes at once."""
    import multiprocessing

    from robot_learning.store import StoreReader

    reader = StoreReader(path)
    rows = np.random.default_rng(0).integers(0, reader.num_steps, 64).tolist()
    blobs = [
        reader.frame_files(key).read_encoded(row)
        for key in ("camera_front", "camera_wrist")
        for row in rows
    ]
    start = time.time() + 0.5
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        counts = pool.starmap(_decode_for, [(blobs, seconds, start)] * processes)
    elapsed = time.time() - start
    return sum(counts) / elapsed / 4


def samples_per_second(
    path: Path | str,
    workers: int,
    samples: int,
    batch_size: int,
    image_dtype: str,
    remote_cache_bytes: int | None = None,
) -> tuple[float, str]:
    """Samples/s, and (remote, no workers) what the reader fetched per sample."""
    dataset = SequenceDataset(
        path,
        obs_keys=["camera_front", "camera_wrist", "robot_state"],
        action_keys=["action"],
        obs_horizon=2,
        action_horizon=16,
        normalization={"robot_state": "mean_std", "action": "min_max"},
        image_dtype=image_dtype,
        **({} if remote_cache_bytes is None else {"remote_cache_bytes": remote_cache_bytes}),
    )
    loader = make_loader(dataset, batch_size=batch_size, num_workers=workers, drop_last=True)
    iterator = iter(loader)
    for _ in range(2 + workers * 2):  # warm-up: worker start, first batches
        next(iterator)
    count, start = 0, time.perf_counter()
    while count < samples:
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            continue
        count += len(batch["action"])
    rate = count / (time.perf_counter() - start)
    pool = getattr(loader.dataset, "buffers", None)
    if workers and pool is not None:
        return rate, f"; batch buffers reused {int(pool.reused.sum()):,} times"
    cache = getattr(dataset._readers[0], "shard_cache", None) if workers == 0 else None
    if cache is None:
        return rate, ""
    seen = count + (2 + workers * 2) * batch_size  # warm-up batches included
    return rate, (
        f"; per sample {cache.requests / seen:.2f} requests, "
        f"{cache.fetched_bytes / seen / 1e3:,.0f} kB fetched; shard cache "
        f"{cache.bytes / 2**20:,.0f} of {cache.max_bytes / 2**20:,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layouts", default="sharded,per-frame")
    parser.add_argument("--image-dtypes", default="uint8,float32")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument(
        "--remote-cache-mb", type=int, default=None, help="per worker (default: the reader's)"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="store_read_"))
    try:
        layouts = args.layouts.split(",")
        print(
            f"building {args.episodes} episodes x {args.steps} steps, 2 cameras {W}x{H}, "
            f"layouts {', '.join(layouts)} ...",
            flush=True,
        )
        stores = {}
        for layout in layouts:
            if layout != "s3":
                stores[layout] = tmp / f"{layout}.zarr"
                build_store(stores[layout], args.episodes, args.steps, LAYOUTS[layout])
        if "s3" in layouts:
            if "sharded" not in stores:
                stores["sharded"] = tmp / "sharded.zarr"
                build_store(stores["sharded"], args.episodes, args.steps)
            stores["s3"] = s3_copy(stores["sharded"])
        for image_dtype in args.image_dtypes.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                processes = max(workers, 1)
                before = decode_limit(stores["sharded"], processes)
                results = []
                for layout in layouts:
                    rate, fetched = samples_per_second(
                        stores[layout],
                        workers,
                        args.samples,
                        args.batch_size,
                        image_dtype,
                        None if args.remote_cache_mb is None else args.remote_cache_mb << 20,
                    )
                    results.append((layout, rate, fetched))
                after = decode_limit(stores["sharded"], processes)
                limit = (before + after) / 2  # the machine's load drifts: both sides
                print(
                    f"  decode limit, {processes} process(es): {limit:,.0f} samples/s "
                    f"({before:,.0f} before, {after:,.0f} after the reads)",
                    flush=True,
                )
                for layout, rate, fetched in results:
                    print(
                        f"  {layout:<9} images {image_dtype:<7} workers={workers}: "
                        f"{rate:,.0f} samples/s (obs horizon 2, action horizon 16, "
                        f"batch {args.batch_size}, {rate / limit:.0%} of the decode limit)"
                        f"{fetched}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
