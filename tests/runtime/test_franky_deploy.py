"""The deployment loop on the real-arm path: franky talking libfranka to a franky-sim FR3 on
127.0.0.1, a chunk policy on its own thread, wall-clock pacing and the safety filter."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from robot_learning.hardware.franka import FR3_READY_JOINTS_RAD, FrankaRobot  # noqa: E402
from robot_learning.hardware.robot import RobotState  # noqa: E402
from robot_learning.keys import EE_POSE  # noqa: E402
from robot_learning.limits import load_limits  # noqa: E402
from robot_learning.runtime import ActionChunk, ExecutionConfig, Observation  # noqa: E402
from robot_learning.runtime.controllers import AsyncPolicyController  # noqa: E402
from robot_learning.runtime.loop import ControlLoop, RobotArm, WallClockPacer  # noqa: E402
from robot_learning.runtime.safety import SafetyFilter  # noqa: E402
from robot_learning.sim.franky_server import FrankySimServer  # noqa: E402

RADIUS_M = 0.04
PERIOD_S = 6.0  # one circle


class CirclePolicy:
    """Chunks of a horizontal circle around the pose it first saw: a stand-in for a trained
    model (franky-sim renders no cameras), with a model's thinking time."""

    def __init__(self) -> None:
        self.centre: np.ndarray | None = None
        self.quat: np.ndarray | None = None
        self.t0 = 0.0

    def reset(self) -> None:
        self.centre = None

    def observe(self, observation: Observation) -> None:
        pass

    def act(self, observation: Observation) -> ActionChunk:
        import time

        pose = observation[EE_POSE]
        if self.centre is None:
            self.centre, self.quat, self.t0 = (
                pose[:3] - [RADIUS_M, 0, 0],
                pose[3:],
                observation.time_s,
            )
        time.sleep(0.03)
        times = observation.time_s + 0.1 * np.arange(16)
        phase = 2 * np.pi * (times - self.t0) / PERIOD_S
        positions = self.centre + RADIUS_M * np.stack(
            [np.cos(phase), np.sin(phase), np.zeros_like(phase)], axis=1
        )
        return ActionChunk(times, positions, np.tile(self.quat, (16, 1)), np.zeros(16))

    def target_at(self, t: float) -> np.ndarray:
        phase = 2 * np.pi * (t - self.t0) / PERIOD_S
        return self.centre + RADIUS_M * np.array([np.cos(phase), np.sin(phase), 0.0])


def test_a_policy_drives_franky_sim_for_a_whole_episode_without_errors() -> None:
    with (
        FrankySimServer(host="127.0.0.1") as server,
        FrankaRobot(
            host=server.host, enforce_realtime=False, relative_dynamics_factor=0.2
        ) as robot,
    ):
        robot.move_joints(FR3_READY_JOINTS_RAD)
        arm = RobotArm(robot, control_period_s=0.01)
        policy = CirclePolicy()

        def observe(state: RobotState) -> Observation:
            return Observation(state.timestamp_s, {EE_POSE: state.ee_pose_vector()})

        controller = AsyncPolicyController(policy, observe, ExecutionConfig(execute_steps=5))
        errors: list[float] = []

        def track(step) -> None:
            if policy.centre is not None and step.step % 10 == 0:
                errors.append(
                    float(
                        np.linalg.norm(
                            step.state.ee_position - policy.target_at(step.state.timestamp_s)
                        )
                    )
                )

        try:
            result = ControlLoop(
                arm, controller, SafetyFilter(load_limits("fr3"), 0.01), WallClockPacer(0.01)
            ).run(max_duration_s=PERIOD_S, on_step=track)
        finally:
            controller.close(timeout_s=1.0)
        assert not robot.has_errors
    assert result.stopped_by == "max_duration" and not result.faults
    assert result.steps >= 0.9 * PERIOD_S / 0.01
    holds = {
        k for k in result.safety_counts if k in ("stale_command", "stale_observation", "non_finite")
    }
    assert not holds, result.safety_counts
    # after the first chunks, the hand follows the circle within a centimetre
    assert np.median(errors[len(errors) // 3 :]) < 0.01, errors
