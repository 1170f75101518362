"""Deployment on the simulated cell paced to the wall clock: does latency compensation pay?

Runs a trained checkpoint (default: a Diffusion lift checkpoint from benchmarks/policy_success)
three ways on the same unseen seeds, nobody taking over:
  lockstep      the simulator waits for the model (what ``rl eval`` measures);
  realtime      100 Hz wall-clock loop, inference on its own thread, chunks played by the
                time they were predicted for (late steps skipped);
  uncompensated the same, but each chunk starts when it arrives.
Prints success, command-period jitter, the loop's decide phase, inference latency and the
age of the observation behind each chunk (camera stamp to first use), plus the takeover
latency of the arbiter in control ticks (button pressed -> first human command).

    python -m benchmarks.deployment --checkpoint RUN_DIR --task lift --episodes 20

Real-time figures depend on a quiet machine: run it alone.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np


def takeover_latency_ticks() -> int:
    """Ticks from the intervene button going down to the first human command."""
    from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice
    from robot_learning.keys import EE_POSE
    from robot_learning.runtime import ActionChunk, ExecutionConfig
    from robot_learning.runtime.arbiter import InterventionArbiter
    from robot_learning.runtime.controllers import ControlSource, PolicyController
    from robot_learning.sim.arm import workcell_observer
    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.workcell import Workcell

    class Button(TeleopDevice):
        def __init__(self, workcell: Workcell) -> None:
            self.workcell = workcell

        def read(self) -> TeleopCommand:
            pressed = self.workcell.time_s >= 0.5 - 1e-9
            return TeleopCommand(
                self.workcell.time_s,
                np.array([0, 0.05 * pressed, 0, 0, 0, 0]),
                False,
                intervene=pressed,
            )

    class Stay:
        def reset(self) -> None: ...

        def observe(self, observation) -> None: ...

        def act(self, observation) -> ActionChunk:
            row = np.concatenate([observation[EE_POSE], [0.0]])
            return ActionChunk.from_vectors(
                observation.time_s + 0.1 * np.arange(5), np.tile(row, (5, 1))
            )

    with Workcell(task="lift", cameras=("front",), image_size=(48, 64)) as workcell:
        policy = PolicyController(Stay(), workcell_observer(workcell, ()), ExecutionConfig())
        arbiter = InterventionArbiter(policy, Button(workcell))
        sources: list[int] = []
        run_episode(
            workcell,
            seed=0,
            controller=arbiter,
            max_duration_s=1.0,
            on_step_record=lambda r: sources.append(r.command.source),
        )
        pressed_at = round(0.5 / workcell.control_period_s)
    first_human = next(i for i, s in enumerate(sources) if s == ControlSource.HUMAN)
    return first_human - pressed_at


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a trained run, e.g. from benchmarks/policy_success",
    )
    parser.add_argument("--task", default="lift")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=300_000)
    args = parser.parse_args()
    from policies.deploy import DeployConfig, deploy_sim

    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}")
    print(f"takeover latency: {takeover_latency_ticks()} control ticks after the button")
    rows = {}
    for name, realtime, changes in (
        ("lockstep", False, {}),
        ("realtime", True, {}),
        ("uncompensated", True, {"latency_compensation": False}),
    ):
        report = deploy_sim(
            DeployConfig(
                checkpoint=args.checkpoint,
                task=args.task,
                episodes=args.episodes,
                seed=args.seed,
                realtime=realtime,
                operator=False,
                execution_changes=changes,
            )
        )
        rows[name] = report
        t = report.timing_ms
        print(
            f"{name:>13}: success {report.successes}/{report.episodes} "
            f"(CI {report.ci95[0]:.0%}-{report.ci95[1]:.0%}), inference p50/p99 "
            f"{report.latency_ms_p50:.0f}/{report.latency_ms_p99:.0f} ms, period jitter "
            f"p50/p99 {t.get('jitter_p50_ms', float('nan')):.2f}/"
            f"{t.get('jitter_p99_ms', float('nan')):.2f} ms, decide p99 "
            f"{t.get('decide_p99_ms', float('nan')):.1f} ms, observation age at first use "
            f"p50/p99 {report.chunk_age_ms_p50:.0f}/{report.chunk_age_ms_p99:.0f} ms, "
            f"faults {len(report.faults)}",
            flush=True,
        )
    print(json.dumps({k: v.to_json() for k, v in rows.items()}, indent=1, default=str)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
