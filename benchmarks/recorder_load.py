"""The recorder node under a real station's load: 3 cameras x 30 Hz compressed 640x480 color
(+ camera_info) and the arm's state at 100 Hz, over loopback DDS, recorded for minutes.

Processes: ``franka_node robot:=sim`` (the arm's topics), a camera process replaying
pre-encoded JPEG frames at 30 Hz on realsense-ros topics (so the benchmark measures the
recorder, not an encoder), and ``recorder_node``. One episode is started and ended on
``/recorder/command``. Printed: frames dropped on the wire and skipped steps (from the
recorder's own counts and the committed episode), recorder CPU (user+system seconds per
wall second, from /proc) and how far the committed steps cover the episode.

    python -m benchmarks.recorder_load [--seconds 300] [--cameras 3]

``--node human_capture`` measures human_capture_node instead (no arm; every frame pair of
the synchronized cameras is a step): frames recorded per camera against frames sent.

    python -m benchmarks.recorder_load --node human_capture --cameras 2 --seconds 60
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cameras(count: int, rate_hz: float, seconds: float) -> None:
    """Publish ``count`` cameras of pre-encoded 640x480 JPEG frames at ``rate_hz``."""
    from robot_learning.hardware.camera import CameraIntrinsics
    from ros_nodes import convert, msgs
    from ros_nodes.runtime import SENSOR_DATA, create_node
    from ros_nodes.topics import CameraTopics

    node = create_node("bench_cameras", [])
    rng = np.random.default_rng(0)
    base = (rng.integers(0, 255, (60, 80, 3))).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    intr = CameraIntrinsics(width=640, height=480, fx=600.0, fy=600.0, cx=320.0, cy=240.0)
    cams = []
    for i in range(count):
        t = CameraTopics(f"cam{i}")
        frames = [
            convert.compressed_image(np.roll(base, 7 * k, axis=1), 0.0, t.optical_frame, 90)
            for k in range(8)
        ]
        cams.append(
            (
                node.create_publisher(msgs.CompressedImage, t.compressed, SENSOR_DATA),
                node.create_publisher(msgs.CameraInfo, t.camera_info, SENSOR_DATA),
                frames,
                t.optical_frame,
            )
        )
    period, start, k = 1.0 / rate_hz, time.monotonic(), 0
    while time.monotonic() - start < seconds:
        stamp = node.now_s()
        for image_pub, info_pub, frames, frame_id in cams:
            frame = frames[k % len(frames)]
            image_pub.publish(dataclasses.replace(frame, header=convert.header(stamp, frame_id)))
            info_pub.publish(convert.camera_info(intr, stamp, frame_id))
        k += 1
        time.sleep(max(0.0, start + k * period - time.monotonic()))
    node.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument(
        "--node",
        choices=("recorder", "human_capture"),
        default="recorder",
        help="the recording node under load",
    )
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "cameras":
        run_cameras(args.cameras, args.rate, args.seconds)
        return 0

    from robot_learning.store import StoreReader
    from ros_nodes import convert, msgs, topics
    from ros_nodes.runtime import SENSOR_DATA
    from ros_nodes.topics import CameraTopics
    from tests.ros_nodes.graph import graph_env, node_command
    from tests.ros_nodes.observer import Observer

    env = graph_env()
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "CYCLONEDDS_URI", "ROS_NODES_BACKEND")})
    workdir = Path(tempfile.mkdtemp(prefix="recorder_load_"))
    store = workdir / "load.zarr"
    names = [f"cam{i}" for i in range(args.cameras)]
    human = args.node == "human_capture"
    procs = (
        {}
        if human
        else {
            "franka": subprocess.Popen(
                node_command(
                    "franka_node", name="franka", params={"robot": "sim", "state_hz": 100.0}
                ),
                env=env,
                cwd=ROOT,
                stdout=open(workdir / "franka.log", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            ),
        }
    )
    params = (
        {
            "store": str(store),
            "cameras": names,
            "camera_hz": args.rate,
            "task": "load",
            "record_hz": args.rate,
            "uncalibrated": True,
        }
        if human
        else {
            "store": str(store),
            "cameras": names,
            "camera_hz": args.rate,
            "task": "load",
            "image_transport": "compressed",
        }
    )
    procs |= {
        "cameras": subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.recorder_load",
                "--role",
                "cameras",
                "--cameras",
                str(args.cameras),
                "--rate",
                str(args.rate),
                "--seconds",
                str(args.seconds + 60),
            ],
            env=env,
            cwd=ROOT,
            stdout=open(workdir / "cameras.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        ),
        "recorder": subprocess.Popen(
            node_command(f"{args.node}_node", name="recorder", params=params),
            env=env,
            cwd=ROOT,
            stdout=open(workdir / "recorder.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        ),
    }
    observer = Observer("bench_operator")
    observer.status(msgs.String, topics.RECORDER_STATUS)
    first_camera = CameraTopics(names[0]).compressed  # what was on the wire, for comparison
    observer.collect(
        msgs.CompressedImage, first_camera, SENSOR_DATA, keep=lambda m: convert.stamp_s(m)
    )
    command = observer.publisher(msgs.String, topics.RECORDER_COMMAND)
    observer.start()

    def status() -> dict:
        return observer.latest_status.get(topics.RECORDER_STATUS, {})

    def wait(cond, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}; logs in {workdir}")
            time.sleep(0.1)

    try:
        wait(lambda: status().get("ready"), 60, "the recorder to be ready")
        wait(lambda: command.subscription_count() > 0, 30, "the recorder's command reader")
        command.publish(msgs.String(data="start"))
        wait(lambda: status().get("state") == "recording", 10, "the episode to start")
        cpu0, wall0 = cpu_seconds(procs["recorder"].pid), time.monotonic()
        print(
            f"recording {args.cameras} cameras x {args.rate:.0f} Hz for {args.seconds:.0f} s",
            flush=True,
        )
        last_print = wall0
        while time.monotonic() - wall0 < args.seconds:
            time.sleep(0.2)
            if time.monotonic() - last_print > 30:
                last_print = time.monotonic()
                now = status()
                print(
                    f"  {last_print - wall0:4.0f} s: {now.get('steps')} steps, dropped "
                    f"{now.get('dropped_frames')}, skipped {now.get('skipped_steps')}",
                    flush=True,
                )
        cpu1, wall1 = cpu_seconds(procs["recorder"].pid), time.monotonic()
        final = dict(status())
        command.publish(msgs.String(data="success"))
        wait(lambda: status().get("committed", 0) >= 1, 120, "the commit")
    finally:
        observer.close()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=30)
    reader = StoreReader(store)
    info = reader.episode(0).info
    steps = info.lengths["step"]
    step_hz = args.rate if human else 10.0
    t = reader.read_episode(0, ["timestamp"])["timestamp"]
    expected = round((t[-1] - t[0]) * step_hz) + 1  # steps the episode's span holds
    print(
        f"recorder CPU: {(cpu1 - cpu0) / (wall1 - wall0):.2f} cores "
        f"({cpu1 - cpu0:.0f} CPU-s over {wall1 - wall0:.0f} s)"
    )
    print(
        f"frames dropped on the wire: {final.get('dropped_frames')}, late: "
        f"{final.get('late_frames')}"
    )
    sent = sum(t[0] <= s <= t[-1] for s in observer.snapshot(first_camera))
    print(f"frames of {names[0]} in that span seen by the benchmark's own reader: {sent}")
    print(
        f"steps committed: {steps} of {expected} in the episode's {t[-1] - t[0]:.1f} s at "
        f"{step_hz:.0f} Hz, skipped "
        f"{info.notes.get('skipped_steps')}, control rows {info.lengths.get('state')}"
    )
    size_mb = sum(f.stat().st_size for f in store.rglob("*") if f.is_file()) / 1e6
    print(f"store: {store} ({size_mb:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
