"""The arbiter fed from other processes: pushed chunks and a streamed device (no ROS here)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.hardware.robot import RobotState
from robot_learning.hardware.teleop import TeleopEvent
from robot_learning.runtime import ActionChunk, ExecutionConfig
from robot_learning.runtime.arbiter import ArbiterConfig, ControlSource, InterventionArbiter
from robot_learning.runtime.scripted_intervention import ScriptedIntervention
from robot_learning.runtime.streams import ChunkStreamController, StreamedTeleop

Q = np.array([1.0, 0.0, 0.0, 0.0])


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _state(t: float, x: float = 0.5) -> RobotState:
    return RobotState(t, np.zeros(7), np.zeros(7), np.array([x, 0.0, 0.3]), Q.copy(), 0.08)


def _chunk(start_s: float, x0: float = 0.5, dx: float = 0.01, n: int = 10) -> ActionChunk:
    """x moves dx per 0.1 s step from x0, starting at start_s."""
    rows = np.tile(np.r_[0.5, 0.0, 0.3, Q, 0.0], (n, 1))
    rows[:, 0] = x0 + dx * np.arange(n)
    return ActionChunk.from_vectors(start_s + 0.1 * np.arange(n), rows)


def test_pushed_chunks_play_by_absolute_time_and_drop_what_passed():
    clock = Clock()
    ctrl = ChunkStreamController(ExecutionConfig(execute_steps=5), clock=clock, silence_s=1.5)
    ctrl.begin(_state(clock.t))
    assert ctrl.command(_state(clock.t), 0.01).holding
    predicted_at = clock.t + 0.01
    clock.t += 0.26  # inference and transport took 250 ms
    assert ctrl.push(_chunk(predicted_at), received_s=clock.t)
    target = ctrl.command(_state(clock.t), 0.01).target
    # 0.25 s into the chunk: x = 0.5 + 0.025, the first 2.5 steps are skipped, not replayed
    assert target.position[0] == pytest.approx(0.525, abs=1e-9)
    assert ctrl.ages_s == [pytest.approx(0.25)]

    late = ChunkStreamController(
        ExecutionConfig(execute_steps=5, latency_compensation=False), clock=clock, silence_s=1.5
    )
    late.begin(_state(clock.t))
    late.push(_chunk(predicted_at), received_s=clock.t)
    assert late.command(_state(clock.t), 0.01).target.position[0] == pytest.approx(0.5)


def test_reanchor_drops_older_plans_and_silence_is_a_stall():
    clock = Clock()
    ctrl = ChunkStreamController(ExecutionConfig(execute_steps=5), clock=clock, silence_s=1.5)
    ctrl.begin(_state(clock.t))
    ctrl.push(_chunk(clock.t), received_s=clock.t)
    clock.t += 0.5
    ctrl.reanchor()
    assert not ctrl.push(_chunk(clock.t - 0.2), received_s=clock.t) and ctrl.dropped == 1
    assert ctrl.command(_state(clock.t, x=0.55), 0.01).holding
    assert ctrl.stalled_for_s == 0.0
    clock.t += 2.0
    assert ctrl.stalled_for_s == pytest.approx(0.5)
    assert ctrl.push(_chunk(clock.t), received_s=clock.t) and ctrl.stalled_for_s == 0.0


def test_the_intervene_button_takes_over_on_the_same_tick_and_hands_back_to_a_fresh_plan():
    clock = Clock()
    policy = ChunkStreamController(ExecutionConfig(execute_steps=10), clock=clock, silence_s=2)
    device = StreamedTeleop(clock=clock)
    arbiter = InterventionArbiter(policy, device, ArbiterConfig(release_after_s=0.1))  # type: ignore[arg-type]
    arbiter.begin(_state(clock.t))
    policy.push(_chunk(clock.t, dx=0.02), received_s=clock.t)
    clock.t += 0.1
    assert arbiter.command(_state(clock.t, x=0.51), 0.01).source == ControlSource.POLICY
    device.update_buttons(gripper_closed=True, intervene=True)
    device.update_twist(np.r_[0.0, 0.0, 0.1, 0, 0, 0], clock.t)
    command = arbiter.command(_state(clock.t, x=0.51), 0.01)
    assert command.source == ControlSource.HUMAN
    assert command.target.position[0] == pytest.approx(0.51)  # from the measured pose
    assert command.target.gripper_closed
    assert command.policy_target.position[0] == pytest.approx(0.52)  # still computed
    device.update_buttons(gripper_closed=False, intervene=False)
    device.update_twist(np.zeros(6), clock.t)
    for _ in range(12):
        clock.t += 0.01
        command = arbiter.command(_state(clock.t, x=0.51), 0.01)
    assert command.source == ControlSource.HOLD and policy.reanchors == 2
    assert not policy.push(_chunk(clock.t - 0.3), received_s=clock.t)  # a stale plan
    policy.push(_chunk(clock.t, x0=0.51), received_s=clock.t)
    assert arbiter.command(_state(clock.t, x=0.51), 0.01).source == ControlSource.POLICY


def test_a_streamed_twist_that_stops_coming_reads_as_zero():
    clock = Clock()
    device = StreamedTeleop(clock=clock, max_twist_age_s=0.2)
    device.update_twist(np.r_[0.1, np.nan, 0, 0, 0, 0], clock.t)
    np.testing.assert_array_equal(device.read().twist, [0.1, 0, 0, 0, 0, 0])
    clock.t += 0.3
    np.testing.assert_array_equal(device.read().twist, np.zeros(6))
    with pytest.raises(ValueError, match="6 values"):
        device.update_twist(np.zeros(3), clock.t)


def test_scripted_intervention_plays_its_schedule_once_per_episode():
    clock = Clock(0.0)
    device = ScriptedIntervention(
        episodes=2,
        policy_s=1.0,
        intervene_s=0.5,
        after_s=1.0,
        pause_s=0.5,
        start_delay_s=0.0,
        clock=clock,
    )
    device.connect()
    readings = []
    while clock.t < 6.5:
        readings.append((clock.t, device.read()))
        clock.t += 0.02
    starts = [t for t, r in readings if TeleopEvent.START in r.events]
    ends = [t for t, r in readings if TeleopEvent.SUCCESS in r.events]
    # within one 20 ms read period of the schedule
    assert starts == pytest.approx([0.0, 3.0], abs=0.021)
    assert ends == pytest.approx([2.5, 5.5], abs=0.021)
    held = [t for t, r in readings if r.intervene]
    assert all(1.0 - 1e-9 <= t < 1.5 or 4.0 - 1e-9 <= t < 4.5 for t in held)
    assert all(r.twist[2] > 0 for _, r in readings if r.intervene)
    assert all(not r.twist.any() for _, r in readings if not r.intervene)
    assert abs(len(held) - 2 * 25) <= 2  # 0.5 s held in each episode
