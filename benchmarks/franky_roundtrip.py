"""Round trip through franky-control to franky-sim: state age and command latency at 100 Hz.

Starts franky-sim on 127.0.0.1 (subprocess), connects a FrankaRobot and, for ``--seconds``,
streams a Cartesian target every 10 ms (a 3 cm, 0.5 Hz sine in y around the start pose).

Figures (median / p95 / max):
- state age: ``time.time() - state.timestamp_s`` right after ``read_state()`` at each cycle
  start, i.e. how old the newest sample is when the loop gets it (station clock).
- read_state call: wall time of ``read_state()``.
- send call: wall time of ``send_cartesian_target()`` (validation, clamping, one state read,
  handing the motion to franky); the command is non-blocking.
- step response: after the stream, 10 separate 2 cm steps in x from rest; time from the send
  call until the measured TCP has moved 1 mm toward the target. This includes franky's
  jerk-limited start at the chosen relative dynamics factor, not just transport.
- tracking lag: distance from the latest target to the measured TCP during the stream.

Run: ``python -m benchmarks.franky_roundtrip [--seconds 5] [--mode impedance|motion]
[--dynamics 0.2]`` (the dynamics factor only shapes ``--mode motion``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from robot_learning.hardware.franka import FrankaRobot
from robot_learning.hardware.robot import CartesianTarget
from robot_learning.sim.franky_server import FrankySimServer


def _stats(name: str, values_s: list[float], unit: str = "ms", scale: float = 1e3) -> str:
    v = np.asarray(values_s) * scale
    return (
        f"{name:<28} median {np.median(v):8.3f}  p95 {np.percentile(v, 95):8.3f}  "
        f"max {v.max():8.3f} {unit}  (n={v.size})"
    )


def stream(arm: FrankaRobot, seconds: float, rate_hz: float) -> dict[str, list[float]]:
    start = arm.read_state()
    period_s = 1.0 / rate_hz
    out: dict[str, list[float]] = {"age": [], "read": [], "send": [], "lag": [], "late": []}
    t0 = time.monotonic()
    deadline = t0
    while (now := time.monotonic()) - t0 < seconds:
        t_read = time.perf_counter()
        state = arm.read_state()
        out["read"].append(time.perf_counter() - t_read)
        out["age"].append(time.time() - state.timestamp_s)
        offset = np.array([0.0, 0.03 * np.sin(2 * np.pi * 0.5 * (now - t0)), 0.0])
        goal = start.ee_position + offset
        out["lag"].append(float(np.linalg.norm(state.ee_position - goal)))
        t_send = time.perf_counter()
        target = CartesianTarget(goal, start.ee_quaternion, timestamp_s=time.time())
        arm.send_cartesian_target(target)
        out["send"].append(time.perf_counter() - t_send)
        deadline += period_s
        out["late"].append(max(0.0, time.monotonic() - deadline))
        time.sleep(max(0.0, deadline - time.monotonic()))
    arm.wait_for_motion(timeout_s=10.0)
    return out


def step_responses(arm: FrankaRobot, n: int, step_m: float = 0.02) -> list[float]:
    latencies_s = []
    for i in range(n):
        time.sleep(0.3)  # come to rest
        start = arm.read_state()
        direction = np.array([1.0 if i % 2 == 0 else -1.0, 0.0, 0.0])
        goal = start.ee_position + step_m * direction
        t_send = time.monotonic()
        arm.send_cartesian_target(CartesianTarget(goal, start.ee_quaternion))
        while time.monotonic() - t_send < 5.0:
            moved_m = float(np.dot(arm.read_state().ee_position - start.ee_position, direction))
            if moved_m >= 0.001:
                latencies_s.append(time.monotonic() - t_send)
                break
        arm.wait_for_motion(timeout_s=10.0)
    return latencies_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate-hz", type=float, default=100.0)
    parser.add_argument("--dynamics", type=float, default=0.2, help="relative dynamics factor")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--mode", choices=["impedance", "motion"], default="impedance")
    args = parser.parse_args()

    with (
        FrankySimServer(port_wait_s=30.0) as sim,
        FrankaRobot(
            host=sim.host,
            enforce_realtime=False,
            relative_dynamics_factor=args.dynamics,
            cartesian_mode=args.mode,
        ) as arm,
    ):
        out = stream(arm, args.seconds, args.rate_hz)
        steps = step_responses(arm, args.steps)
    print(
        f"franky-control -> franky-sim 1.0.4 on {sim.host}, {args.rate_hz:.0f} Hz Cartesian "
        f"targets for {args.seconds:.1f} s, cartesian_mode={args.mode}, relative dynamics "
        f"factor {args.dynamics}"
    )
    print(_stats("state age", out["age"]))
    print(_stats("read_state call", out["read"]))
    print(_stats("send_cartesian_target call", out["send"]))
    print(_stats("loop overrun past deadline", out["late"]))
    print(_stats("step response (1 mm moved)", steps))
    print(_stats("tracking lag", out["lag"], unit="mm"))


if __name__ == "__main__":
    main()
