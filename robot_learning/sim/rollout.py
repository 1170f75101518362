"""Lockstep rollouts on the workcell: a teleop device (usually the scripted expert) or a
policy drives the arm, one control period per tick, as fast as the CPU allows.

Both go through ``robot_learning.runtime.controllers``: a device's twist through
``TwistIntegrator`` (the path a SpaceMouse takes), a policy's chunks through the
``ChunkExecutor`` (the path deployment takes). The simulator pauses while a policy thinks,
so evaluation measures the policy, not the CPU; latency is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent
from robot_learning.keys import (
    EE_POSE,
    GRIPPER_WIDTH,
    JOINT_POSITIONS,
    JOINT_VELOCITIES,
    camera_key,
)
from robot_learning.runtime.controllers import Controller, TeleopController
from robot_learning.runtime.observation import Observation
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
) -> EpisodeResult:
    """Reset to ``seed`` and drive the arm with ``controller`` (or ``device``; default: the
    task's scripted expert).

    Stops ``settle_s`` after the device reports SUCCESS, after the task check has held for
    ``settle_s`` when ``stop_on_success`` (evaluation), or at ``max_duration_s``.
    """
    state = workcell.reset(seed)
    if controller is None:
        controller = TeleopController(device or workcell.make_expert(noise_m_s=noise_m_s))
    period = workcell.control_period_s
    max_duration_s = max_duration_s or workcell.task.max_duration_s
    max_steps = int(round(max_duration_s / period))
    settle_steps = int(round(settle_s / period))
    reported_at: int | None = None
    success_since: int | None = None
    first_success_s: float | None = None
    step = 0
    controller.begin(state)
    try:
        while step < max_steps:
            command = controller.command(state, period)
            if TeleopEvent.SUCCESS in command.events and reported_at is None:
                reported_at = step
            if on_step is not None:
                on_step(step, state, command.teleop, command.target)
            state = workcell.step(command.target)
            step += 1
            if reported_at is not None and step - reported_at >= settle_steps:
                break
            if stop_on_success:
                if workcell.is_success():
                    if success_since is None:
                        success_since, first_success_s = step, workcell.time_s
                    if step - success_since >= settle_steps:
                        break
                else:
                    success_since = None
    finally:
        controller.end()
    return EpisodeResult(
        seed=seed,
        success=workcell.is_success(),
        expert_reported_success=reported_at is not None,
        steps=step,
        duration_s=workcell.time_s,
        first_success_s=first_success_s,
    )


def workcell_observer(
    workcell: Workcell, cameras: Sequence[str] | None = None
) -> Callable[[RobotState], Observation]:
    """Observations as the recorder stores them: the named cameras rendered now and the
    robot state, each with its timestamp (simulated seconds)."""
    names = tuple(cameras) if cameras is not None else workcell.camera_names

    def observe(state: RobotState) -> Observation:
        values = {
            EE_POSE: state.ee_pose_vector(),
            GRIPPER_WIDTH: state.gripper_width_m,
            JOINT_POSITIONS: state.joint_positions,
            JOINT_VELOCITIES: state.joint_velocities,
        }
        stamps = dict.fromkeys(values, state.timestamp_s)
        for name in names:
            frame = workcell.cameras[name].read()
            values[camera_key(name)] = frame.color
            stamps[camera_key(name)] = frame.timestamp_s
        return Observation(time_s=state.timestamp_s, values=values, timestamps_s=stamps)

    return observe
