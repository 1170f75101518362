"""``rl store import-bag`` throughput: a recording of one raw and one compressed 640x480
camera at 30 Hz and joint states at 1 kHz, imported at a 30 Hz control clock.

Prints the bag's size and messages, the import's wall and CPU time and how many times faster
than real time it ran, for sqlite3 and mcap.

    python -m benchmarks.bag_import [--seconds 20]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import imagecodecs
import numpy as np
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from benchmarks.synthetic_frames import color_frames
from data_collection.bag_import import import_bag
from data_collection.bag_mapping import load_mapping

TS = get_typestore(Stores.ROS2_JAZZY)
H, W = 480, 640
JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
RAW, COMPRESSED, STATES = (
    "/camera/front/color/image_raw",
    "/camera/wrist/color/image_raw/compressed",
    "/franka/joint_states",
)


def header(t: float):
    return TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(t % 1 * 1e9)),
        frame_id="",
    )


def write_bag(path: Path, seconds: float, storage: StoragePlugin) -> int:
    frames = color_frames(30, H, W)
    jpegs = [np.frombuffer(imagecodecs.jpeg8_encode(f, level=90), np.uint8) for f in frames]
    t0, count = 1_700_000_000.0, 0
    T = TS.types
    with Writer(path, version=9, storage_plugin=storage) as writer:
        raw = writer.add_connection(RAW, "sensor_msgs/msg/Image", typestore=TS)
        comp = writer.add_connection(COMPRESSED, "sensor_msgs/msg/CompressedImage", typestore=TS)
        states = writer.add_connection(STATES, "sensor_msgs/msg/JointState", typestore=TS)
        for ms in range(int(seconds * 1000)):
            t = t0 + ms / 1000
            if ms % 33 == 0:
                i = (ms // 33) % len(frames)
                writer.write(
                    raw,
                    int(t * 1e9),
                    TS.serialize_cdr(
                        T["sensor_msgs/msg/Image"](
                            header=header(t),
                            height=H,
                            width=W,
                            encoding="rgb8",
                            is_bigendian=0,
                            step=W * 3,
                            data=frames[i].reshape(-1),
                        ),
                        "sensor_msgs/msg/Image",
                    ),
                )
                writer.write(
                    comp,
                    int(t * 1e9),
                    TS.serialize_cdr(
                        T["sensor_msgs/msg/CompressedImage"](
                            header=header(t), format="jpeg", data=jpegs[i]
                        ),
                        "sensor_msgs/msg/CompressedImage",
                    ),
                )
                count += 2
            writer.write(
                states,
                int(t * 1e9),
                TS.serialize_cdr(
                    T["sensor_msgs/msg/JointState"](
                        header=header(t),
                        name=JOINTS,
                        position=np.full(7, ms * 1e-3),
                        velocity=np.zeros(7),
                        effort=np.zeros(7),
                    ),
                    "sensor_msgs/msg/JointState",
                ),
            )
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bag_bench_"))
    try:
        mapping_path = work / "mapping.yaml"
        mapping_path.write_text(
            yaml.safe_dump(
                {
                    "task": "bench",
                    "control_hz": 30,
                    "episodes": {"split": "bag"},
                    "streams": [
                        {"topic": RAW, "key": "camera_front"},
                        {"topic": COMPRESSED, "key": "camera_wrist"},
                        {"topic": STATES, "key": "robot_joint_positions"},
                    ],
                }
            )
        )
        mapping = load_mapping(mapping_path)
        for storage in (StoragePlugin.SQLITE3, StoragePlugin.MCAP):
            bag = work / f"bag_{storage.name.lower()}"
            messages = write_bag(bag, args.seconds, storage)
            size = sum(p.stat().st_size for p in bag.rglob("*") if p.is_file())
            cpu0, wall0 = time.process_time(), time.perf_counter()
            summary = import_bag(bag, work / f"{storage.name}.zarr", mapping, progress=False)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            print(
                f"{storage.name.lower():7s} {args.seconds:.0f} s recording, {messages} msgs, "
                f"{size / 1e6:.0f} MB: imported {summary.steps} steps in {wall:.1f} s "
                f"(CPU {cpu:.1f} s), {messages / wall:.0f} msg/s, "
                f"{args.seconds / wall:.1f}x real time"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
