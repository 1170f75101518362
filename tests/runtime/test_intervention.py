"""Human-in-the-loop control on the simulated cell: a policy that gets stuck, a simulated
operator who takes over through the teleop path, and the record of who was in control."""

from __future__ import annotations

import numpy as np

from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH
from robot_learning.runtime import ActionChunk, ExecutionConfig, Observation
from robot_learning.runtime.arbiter import ArbiterConfig, ControlSource, InterventionArbiter
from robot_learning.runtime.controllers import PolicyController
from robot_learning.sim.arm import workcell_observer
from robot_learning.sim.operator import SimulatedOperator
from robot_learning.sim.rollout import run_episode
from robot_learning.sim.workcell import Workcell


class FrozenPolicy:
    """Asks to stay where the hand is: the policy that never gets going."""

    def reset(self) -> None:
        pass

    def observe(self, observation: Observation) -> None:
        pass

    def act(self, observation: Observation) -> ActionChunk:
        pose = observation[EE_POSE]
        closed = float(observation[GRIPPER_WIDTH] < 0.07)
        rows = np.tile(np.concatenate([pose, [closed]]), (10, 1))
        return ActionChunk.from_vectors(observation.time_s + 0.1 * np.arange(10), rows)


def _run(workcell: Workcell, device: TeleopDevice, seed: int = 5, max_duration_s: float = 30):
    controller = InterventionArbiter(
        PolicyController(
            FrozenPolicy(), workcell_observer(workcell, ()), ExecutionConfig(execute_steps=5)
        ),
        device,
    )
    decide = controller.command
    controller.sources = []

    def command(state, period_s):
        out = decide(state, period_s)
        controller.sources.append(out.source)
        assert out.policy_target is not None and out.human_target is not None
        return out

    controller.command = command
    steps = []
    result = run_episode(
        workcell,
        seed=seed,
        controller=controller,
        max_duration_s=max_duration_s,
        on_step=lambda i, s, c, t: steps.append((i, s, c, t)),
    )
    return result, controller, steps


def test_the_operator_takes_over_a_stuck_policy_and_finishes_the_task() -> None:
    with Workcell(task="lift", seed=5, cameras=("front",), image_size=(48, 64)) as workcell:
        workcell.reset(5)
        operator = SimulatedOperator(workcell.make_expert(noise_m_s=0.0), workcell.robot)
        result, arbiter, steps = _run(workcell, operator)
    assert result.success and result.expert_reported_success
    assert operator.takeovers >= 1 and len(arbiter.takeovers) == operator.takeovers
    first = arbiter.takeovers[0]
    # the operator's patience (drift_for_s = 0.6 s) is the only delay before a takeover
    assert 0.5 <= first.start_s <= 1.0
    # in control on the tick the button went down, from the measured pose: no jump
    _, state, reading, target = steps[first.start_tick]
    assert reading.intervene
    assert np.linalg.norm(target.position - state.ee_position) < 0.25 * 0.01 + 1e-6
    # every tick before the takeover was the policy's
    assert all(not r.intervene for _, _, r, _ in steps[: first.start_tick])


class ButtonOperator(TeleopDevice):
    """Presses intervene between two times and pushes +y meanwhile; otherwise idle."""

    def __init__(self, workcell: Workcell, press_s: float, release_s: float) -> None:
        self.workcell, self.press_s, self.release_s = workcell, press_s, release_s

    def read(self) -> TeleopCommand:
        now = self.workcell.time_s
        pressed = self.press_s <= now < self.release_s
        twist = np.array([0, 0.1, 0, 0, 0, 0]) if pressed else np.zeros(6)
        return TeleopCommand(now, twist, False, intervene=pressed)


def test_hand_back_resumes_the_policy_from_where_the_human_left_the_arm() -> None:
    with Workcell(task="lift", seed=5, cameras=("front",), image_size=(48, 64)) as workcell:
        result, arbiter, steps = _run(
            workcell, ButtonOperator(workcell, 1.0, 2.0), max_duration_s=4.0
        )
    assert len(arbiter.takeovers) == 1
    takeover = arbiter.takeovers[0]
    sources = np.array(arbiter.sources)
    assert set(sources[:100]) == {ControlSource.POLICY}
    assert set(sources[100 : takeover.end_tick]) == {ControlSource.HUMAN}
    assert set(sources[takeover.end_tick :]) == {ControlSource.POLICY}
    assert takeover.start_tick == 100  # pressed at 1.00 s, human in control that tick
    release = ArbiterConfig().release_after_s
    assert abs(takeover.end_s - (2.0 + release)) < 0.011
    start, end = steps[takeover.start_tick][1], steps[takeover.end_tick][1]
    assert end.ee_position[1] - start.ee_position[1] > 0.05  # the operator pushed the hand along +y
    # after hand-back the frozen policy holds the hand where the human left it
    after = np.array([s.ee_position for _, s, _, _ in steps[takeover.end_tick + 20 :]])
    assert np.abs(after - after[0]).max() < 2e-3


class WatchedExpert(TeleopDevice):
    """The scripted expert driving the arm with its twist changed by ``alter``, and a
    simulated operator watching every tick (as it would beside a policy)."""

    def __init__(self, workcell: Workcell, alter) -> None:
        self.driver = workcell.make_expert(noise_m_s=0.0)
        self.operator = SimulatedOperator(workcell.make_expert(noise_m_s=0.0), workcell.robot)
        self.alter = alter

    def read(self) -> TeleopCommand:
        self.operator.read()
        command = self.driver.read()
        return TeleopCommand(command.timestamp_s, self.alter(command.twist), command.gripper_closed)


def _watch(alter, seconds: float) -> SimulatedOperator:
    with Workcell(task="lift", seed=5, cameras=("front",), image_size=(48, 64)) as workcell:
        device = WatchedExpert(workcell, alter)
        run_episode(workcell, seed=5, device=device, max_duration_s=seconds)
    return device.operator


def test_the_operator_lets_a_slower_hand_on_the_right_course_be() -> None:
    # half the expert's speed, same direction: a speed-sensitive rule took over here
    assert _watch(lambda twist: 0.5 * twist, seconds=4.0).reasons == []


def test_the_operator_takes_over_a_hand_heading_sideways_and_says_why() -> None:
    def sideways(twist):  # the expert's translation turned 90 degrees about z
        return np.array([-twist[1], twist[0], twist[2], *twist[3:]])

    reasons = _watch(sideways, seconds=3.0).reasons
    assert reasons and reasons[0] == "drift"
