"""ROS 2 messages between processes over the pure-RTPS runtime (pip cyclonedds, loopback).

Scenarios (one publisher process, one subscriber process, stamps = publish time, latency =
receive time - stamp, both on this machine's clock):
  compressed3   3 cameras x 640x480 JPEG (q90, CompressedImage) at 30 Hz, sensor-data QoS
  raw1          1 camera 640x480 rgb8 Image at 30 Hz, sensor-data QoS
  raw_max       1 camera 640x480 rgb8 Image as fast as the publisher can, reliable QoS
  stock_max     the same with the binding's own sequence<uint8> (list of ints), reliable
  joints1k      JointState (7 joints) at 1 kHz, reliable QoS
Then, in one process, where the time of one raw 640x480 message goes (serialize, write,
take + deserialize), for our octet machine and for the binding's stock sequence<uint8>.

    python -m benchmarks.ros_transport [--seconds 5] [--only raw1,joints1k]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.annotations import final
from cyclonedds.idl.types import sequence, uint8, uint32

from ros_nodes import convert, msgs
from ros_nodes.msgs import Header
from ros_nodes.runtime import DEFAULT, SENSOR_DATA, create_node


@dataclass
@final
class StockImage(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    """sensor_msgs/Image as the binding serializes it by default: one Python int per byte."""

    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = field(default_factory=list)


SCENARIOS = {
    # name: (message kind, topics, rate Hz (0 = as fast as possible), qos)
    "compressed3": ("jpeg", 3, 30.0, "sensor"),
    "raw1": ("raw", 1, 30.0, "sensor"),
    "raw_max": ("raw", 1, 0.0, "reliable"),
    "stock_max": ("stock", 1, 0.0, "reliable"),
    "joints1k": ("joints", 1, 1000.0, "reliable"),
}
TYPES = {
    "jpeg": msgs.CompressedImage,
    "raw": msgs.Image,
    "stock": StockImage,
    "joints": msgs.JointState,
}


def test_image() -> np.ndarray:
    """A 640x480 frame with smooth shading and texture, so JPEG sizes are like a camera's."""
    y, x = np.mgrid[0:480, 0:640]
    rng = np.random.default_rng(0)
    img = np.stack([x * 0.3 + 40, y * 0.4 + 30, (x + y) * 0.15 + 60], -1)
    img += 12 * np.sin(x / 7.0)[..., None] * np.cos(y / 11.0)[..., None]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_message(kind: str, stamp: float, payload: object) -> object:
    if kind == "jpeg":
        return msgs.CompressedImage(
            header=convert.header(stamp, "cam"), format="rgb8; jpeg compressed bgr8", data=payload
        )
    if kind == "raw":
        return msgs.Image(
            header=convert.header(stamp, "cam"),
            height=480,
            width=640,
            encoding="rgb8",
            step=1920,
            data=payload,
        )
    if kind == "stock":
        return StockImage(
            header=convert.header(stamp, "cam"),
            height=480,
            width=640,
            encoding="rgb8",
            step=1920,
            data=list(payload),
        )  # type: ignore[arg-type]
    return msgs.JointState(
        header=convert.header(stamp, ""),
        name=[f"fr3_joint{i}" for i in range(1, 8)],
        position=[0.1] * 7,
        velocity=[0.0] * 7,
    )


def payload_for(kind: str) -> object:
    import imagecodecs

    img = test_image()
    if kind == "jpeg":
        return bytes(imagecodecs.jpeg_encode(img, level=90))
    return img.tobytes() if kind in ("raw", "stock") else None


def run_publisher(scenario: str, seconds: float) -> None:
    kind, count, rate, qos = SCENARIOS[scenario]
    node = create_node("bench_pub", [])
    profile = SENSOR_DATA if qos == "sensor" else DEFAULT
    pubs = [node.create_publisher(TYPES[kind], f"/bench/t{i}", profile) for i in range(count)]
    deadline = time.monotonic() + 15
    while any(p.subscription_count() == 0 for p in pubs):
        if time.monotonic() > deadline:
            raise SystemExit("publisher: no subscriber matched within 15 s")
        time.sleep(0.05)
    time.sleep(0.5)
    payload = payload_for(kind)
    sent, start = 0, time.monotonic()
    next_t = start
    while time.monotonic() - start < seconds:
        for pub in pubs:
            pub.publish(make_message(kind, time.time(), payload))
            sent += 1
        if rate > 0:
            next_t += 1.0 / rate
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    elapsed = time.monotonic() - start
    print(json.dumps({"sent": sent, "elapsed_s": elapsed}), flush=True)
    time.sleep(1.0)  # let the last samples reach the subscriber
    node.close()


def run_subscriber(scenario: str, seconds: float) -> None:
    kind, count, _, qos = SCENARIOS[scenario]
    node = create_node("bench_sub", [])
    profile = SENSOR_DATA if qos == "sensor" else DEFAULT
    latencies: list[float] = []
    first: list[float] = []

    def on_msg(msg: object) -> None:
        now = time.time()
        latencies.append(now - convert.stamp_s(msg))
        if not first:
            first.append(now)

    for i in range(count):
        node.create_subscription(TYPES[kind], f"/bench/t{i}", on_msg, profile)
    give_up = time.monotonic() + seconds + 20
    node.spin(
        until=lambda: (
            time.monotonic() > give_up or (bool(first) and time.time() - first[0] > seconds + 1.5)
        )
    )
    print(
        json.dumps({"latencies": latencies, "window_s": time.time() - first[0] if first else 0.0}),
        flush=True,
    )
    node.close()


def run_scenario(scenario: str, seconds: float) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(100, 200)))
    cmd = [sys.executable, "-m", "benchmarks.ros_transport", "--seconds", str(seconds)]
    sub = subprocess.Popen(
        [*cmd, "--role", "sub", "--only", scenario], env=env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(1.0)
    pub = subprocess.run(
        [*cmd, "--role", "pub", "--only", scenario],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    sub_out, _ = sub.communicate(timeout=seconds + 40)
    sent = json.loads(pub.stdout.strip().splitlines()[-1])
    got = json.loads(sub_out.strip().splitlines()[-1])
    lat = np.array(got["latencies"]) * 1e3
    return {
        "sent": sent["sent"],
        "received": len(lat),
        "sent_per_s": sent["sent"] / sent["elapsed_s"],
        "received_per_s": len(lat) / sent["elapsed_s"],
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"),
    }


def where_time_goes(repeats: int = 20) -> dict[str, float]:
    """Milliseconds per 640x480 rgb8 message, each stage on its own, in one process."""
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from ros_nodes.runtime.dds import dds_qos, domain_id, ensure_network_config

    payload = test_image().tobytes()
    out: dict[str, float] = {}

    def timed(name: str, fn) -> object:  # type: ignore[no-untyped-def]
        result = fn()
        start = time.perf_counter()
        for _ in range(repeats):
            result = fn()
        out[name] = (time.perf_counter() - start) / repeats * 1e3
        return result

    ours = make_message("raw", 0.0, payload)
    stock = timed(
        "stock: bytes -> list of ints (what a caller must build)",
        lambda: make_message("stock", 0.0, payload),
    )
    ours_wire = timed("ours: serialize", ours.serialize)
    stock_wire = timed("stock: serialize", stock.serialize)
    assert ours_wire == stock_wire, "both carry the same wire bytes"
    timed("ours: deserialize", lambda: msgs.Image.deserialize(ours_wire))
    timed("stock: deserialize", lambda: StockImage.deserialize(stock_wire))
    ensure_network_config()
    dp = DomainParticipant(domain_id())
    for label, cls, msg in (("ours", msgs.Image, ours), ("stock", StockImage, stock)):
        topic = Topic(dp, f"rt/bench/inproc_{label}", cls)
        writer = DataWriter(dp, topic, qos=dds_qos(DEFAULT))
        reader = DataReader(dp, topic, qos=dds_qos(DEFAULT))
        time.sleep(0.3)
        timed(f"{label}: write (serialize + DDS)", lambda w=writer, m=msg: w.write(m))
        reader.take(N=1000)

        def round_trip(w=writer, r=reader, m=msg):  # type: ignore[no-untyped-def]
            w.write(m)
            while not r.take(N=1):
                pass

        timed(f"{label}: write + take in-process (deserialize included)", round_trip)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--role", choices=("pub", "sub"), help=argparse.SUPPRESS)
    parser.add_argument("--skip-breakdown", action="store_true")
    args = parser.parse_args()
    if args.role == "pub":
        run_publisher(args.only, args.seconds)
        return 0
    if args.role == "sub":
        run_subscriber(args.only, args.seconds)
        return 0
    print(f"{'scenario':<12} {'sent/s':>8} {'recv/s':>8} {'lost':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for scenario in args.only.split(","):
        r = run_scenario(scenario, args.seconds)
        print(
            f"{scenario:<12} {r['sent_per_s']:8.1f} {r['received_per_s']:8.1f} "
            f"{r['sent'] - r['received']:6d} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f}",
            flush=True,
        )
    if not args.skip_breakdown:
        print("\nwhere one raw 640x480 rgb8 message's time goes (ms, one process):")
        for name, ms in where_time_goes().items():
            print(f"  {name:<58} {ms:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
