"""Run a teleop device (usually the scripted expert) on the workcell, the way collection will.

The device's twist goes through ``TwistIntegrator`` into absolute Cartesian targets, exactly
the path a SpaceMouse takes; images are rendered only every ``render_every`` control steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent
from robot_learning.hardware.twist_integrator import TwistIntegrator
from robot_learning.sim.workcell import Workcell

# Called once per control step with (step index, state before the step, the device's
# command, the target sent).
StepCallback = Callable[[int, RobotState, TeleopCommand, CartesianTarget], None]


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool  # the task's own check at the end
    expert_reported_success: bool
    steps: int
    duration_s: float  # simulated seconds


def run_episode(
    workcell: Workcell,
    *,
    seed: int,
    device: TeleopDevice | None = None,
    noise_m_s: float = 0.02,
    max_duration_s: float | None = None,
    settle_s: float = 0.2,
    on_step: StepCallback | None = None,
) -> EpisodeResult:
    """Reset to ``seed`` and drive the arm with ``device`` (default: the task's expert).

    Stops ``settle_s`` after the device reports SUCCESS, or at ``max_duration_s``.
    """
    state = workcell.reset(seed)
    device = device or workcell.make_expert(noise_m_s=noise_m_s)
    integrator = TwistIntegrator()
    integrator.reset(state)
    max_duration_s = max_duration_s or workcell.task.max_duration_s
    max_steps = int(round(max_duration_s / workcell.control_period_s))
    settle_steps = int(round(settle_s / workcell.control_period_s))
    reported_at: int | None = None
    step = 0
    with device:
        while step < max_steps:
            command = device.read()
            if TeleopEvent.SUCCESS in command.events and reported_at is None:
                reported_at = step
            target = integrator.step(command, workcell.control_period_s, state=state)
            if on_step is not None:
                on_step(step, state, command, target)
            state = workcell.step(target)
            step += 1
            if reported_at is not None and step - reported_at >= settle_steps:
                break
    return EpisodeResult(
        seed=seed,
        success=workcell.is_success(),
        expert_reported_success=reported_at is not None,
        steps=step,
        duration_s=workcell.time_s,
    )
