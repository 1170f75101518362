"""Lockstep workcell speed: control steps/s and real-time factor, with and without cameras.

Setting: the lift/push/stack experts at 100 Hz control through TwistIntegrator, two cameras
(front, wrist) at 240x320 rendered at 10 Hz (the policy rate). Run:
``python -m benchmarks.sim_speed``.
"""

from __future__ import annotations

import argparse
import time

from robot_learning.sim.rollout import run_episode
from robot_learning.sim.workcell import Workcell


def measure(
    task: str, *, episodes: int, render_every: int | None, image_size
) -> tuple[int, float, float]:
    """(control steps, wall seconds, simulated seconds) over ``episodes`` expert episodes."""
    with Workcell(task=task, cameras=("front", "wrist"), image_size=image_size) as workcell:
        if render_every:
            workcell.render()  # start the renderer outside the timing

        def render(step: int, *_: object) -> None:
            if render_every and step % render_every == 0:
                workcell.render()

        steps, sim_s = 0, 0.0
        start = time.perf_counter()
        for seed in range(episodes):
            result = run_episode(workcell, seed=seed, on_step=render)
            steps, sim_s = steps + result.steps, sim_s + result.duration_s
        return steps, time.perf_counter() - start, sim_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'task':6} {'cameras':22} {'steps/s':>9} {'x real time':>12}")
    for task in ("lift", "push", "stack"):
        for label, every in (("none", None), ("2 @ 240x320, 10 Hz", 10)):
            steps, wall_s, sim_s = measure(
                task, episodes=args.episodes, render_every=every, image_size=(240, 320)
            )
            print(f"{task:6} {label:22} {steps / wall_s:9.0f} {sim_s / wall_s:12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
