"""Lockstep rollouts on the workcell: a teleop device (usually the scripted expert) or a
policy drives the arm, one control period per tick, as fast as the CPU allows.

Both go through ``robot_learning.runtime.controllers``: a device's twist through
``TwistIntegrator`` (the path a SpaceMouse takes), a policy's chunks through the
``ChunkExecutor`` (the path deployment takes). The simulator pauses while a policy thinks,
so evaluation measures the policy, not the CPU; latency is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice
from robot_learning.runtime.controllers import Controller, TeleopController
from robot_learning.runtime.loop import ControlLoop, LoopResult, Pacer, StepRecord
from robot_learning.runtime.safety import SafetyFilter
from robot_learning.sim.arm import WorkcellArm, workcell_observer
from robot_learning.sim.workcell import Workcell

# Called once per control step with (step index, state before the step, the device's
# command (None when a policy drives), the target sent).
StepCallback = Callable[[int, RobotState, TeleopCommand | None, CartesianTarget], None]


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool  # the task's own check at the end
    expert_reported_success: bool
    steps: int
    duration_s: float  # simulated seconds
    first_success_s: float | None = None  # simulated time the task check first held
    loop: LoopResult | None = None  # timings and safety-filter counts


def run_episode(
    workcell: Workcell,
    *,
    seed: int,
    device: TeleopDevice | None = None,
    controller: Controller | None = None,
    noise_m_s: float = 0.02,
    max_duration_s: float | None = None,
    settle_s: float = 0.2,
    stop_on_success: bool = False,
    on_step: StepCallback | None = None,
    on_step_record: Callable[[StepRecord], None] | None = None,
    safety: SafetyFilter | None = None,
    arm: WorkcellArm | None = None,
    pacer: Pacer | None = None,
) -> EpisodeResult:
    """Reset to ``seed`` and drive the arm with ``controller`` (or ``device``; default: the
    task's scripted expert) through the runtime's ``ControlLoop`` and safety filter.

    Stops ``settle_s`` after the device reports SUCCESS, after the task check has held for
    ``settle_s`` when ``stop_on_success`` (evaluation), or at ``max_duration_s``. Lockstep
    unless ``arm`` runs on a station clock and ``pacer`` paces the wall clock.
    """
    arm = arm or WorkcellArm(workcell)
    arm.reset(seed)
    if controller is None:
        controller = TeleopController(
            device or workcell.make_expert(noise_m_s=noise_m_s), limits=workcell.robot.limits
        )
    safety = safety or SafetyFilter(workcell.robot.limits, workcell.control_period_s)
    first_success_s: list[float] = []

    def is_success() -> bool:
        ok = workcell.is_success()
        if not ok:
            first_success_s.clear()
        elif not first_success_s:
            first_success_s.append(workcell.time_s)
        return ok

    def record(step: StepRecord) -> None:
        if on_step_record is not None:
            on_step_record(step)
        if on_step is not None:
            on_step(step.step, step.state, step.command.teleop, step.sent.target)

    loop = ControlLoop(arm, controller, safety, pacer)
    result = loop.run(
        max_duration_s=max_duration_s or workcell.task.max_duration_s,
        is_success=is_success if stop_on_success else None,
        settle_s=settle_s,
        on_step=record,
    )
    return EpisodeResult(
        seed=seed,
        success=workcell.is_success(),
        expert_reported_success=result.stopped_by == "operator",
        steps=result.steps,
        duration_s=workcell.time_s,
        first_success_s=first_success_s[0] if first_success_s else None,
        loop=result,
    )


__all__ = ["EpisodeResult", "StepCallback", "run_episode", "workcell_observer"]
