"""The safety filter on the simulated FR3: what a bad command can and cannot make the arm do,
and that good commands (the scripted experts') pass untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robot_learning.geometry import quat_angle_rad, quat_from_rotvec_xyzw, quat_multiply_xyzw
from robot_learning.hardware.robot import CartesianTarget
from robot_learning.limits import RobotLimits, load_limits
from robot_learning.runtime.safety import SafetyEvent, SafetyFilter
from robot_learning.sim.rollout import run_episode
from robot_learning.sim.workcell import Workcell

LIMITS = load_limits("fr3_sim")


@pytest.fixture(scope="module")
def workcell():
    with Workcell(task="lift", seed=3, cameras=("front",), image_size=(48, 64)) as cell:
        yield cell


def _drive(workcell: Workcell, safety: SafetyFilter, make_command, steps: int):
    """Closed loop: command -> filter -> simulated arm; returns sent targets and states."""
    state = workcell.reset(3)
    safety.reset(state)
    sent, states = [], [state]
    for i in range(steps):
        now = state.timestamp_s
        out = safety.filter(make_command(i, state, now), state, now)
        sent.append(out)
        state = workcell.step(out.target)
        states.append(state)
    return sent, states


@pytest.mark.parametrize("task", ["lift", "push", "stack"])
def test_the_scripted_experts_pass_untouched(task: str) -> None:
    """The shipped sim limits leave a good demonstration alone: no event in a whole episode."""
    safety = SafetyFilter(LIMITS, 0.01)
    changed: list[float] = []

    def check(step, state, teleop, target):
        if step == 0:
            safety.reset(state)
        out = safety.filter(target, state, state.timestamp_s)
        if out.events:
            changed.append((state.timestamp_s, out.events))
        else:
            np.testing.assert_allclose(out.target.position, target.position, atol=1e-9)

    with Workcell(task=task, seed=11, cameras=("front",), image_size=(48, 64)) as cell:
        result = run_episode(cell, seed=11, on_step=check)
    assert result.success
    assert not changed, f"filter changed {len(changed)} expert commands: {changed[:3]}"


def test_a_far_target_moves_the_arm_at_bounded_speed_inside_the_box(workcell) -> None:
    """A policy that asks for a point 1 m away and outside the box: the arm goes toward it
    no faster than the limit, never leaves the box, and the events say why."""
    safety = SafetyFilter(LIMITS, 0.01)
    goal = np.array([1.3, 0.9, -0.4])
    sent, states = _drive(
        workcell,
        safety,
        lambda i, s, now: CartesianTarget(goal, s.ee_quaternion, False, now),
        steps=150,
    )
    positions = np.array([c.target.position for c in sent])
    period = workcell.control_period_s
    speeds = np.linalg.norm(np.diff(positions, axis=0), axis=1) / period
    assert speeds.max() <= LIMITS.max_linear_speed_m_s + 1e-9
    accel = np.linalg.norm(np.diff(np.diff(positions, axis=0), axis=0), axis=1) / period**2
    assert accel.max() <= LIMITS.max_linear_accel_m_s2 * 2 + 1e-6  # both axes of change
    measured = np.array([s.ee_position for s in states])
    lo, hi = np.array(LIMITS.workspace_min_m), np.array(LIMITS.workspace_max_m)
    assert np.all(measured >= lo - 2e-3) and np.all(measured <= hi + 2e-3)
    lead = np.linalg.norm(positions - measured[:-1], axis=1)
    assert lead.max() <= LIMITS.max_lead_m + 1e-9
    assert np.linalg.norm(measured[-1] - measured[0]) > 0.3  # it did move toward the goal
    for event in (SafetyEvent.WORKSPACE, SafetyEvent.SPEED, SafetyEvent.ACCELERATION):
        assert safety.counts[event] > 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_commands_hold_the_arm(workcell, bad: float) -> None:
    safety = SafetyFilter(LIMITS, 0.01)

    def command(i, state, now):
        position = state.ee_position + [0.05, 0, 0]
        if i >= 20:
            position = np.array([bad, 0.0, 0.3])
        return CartesianTarget(position, state.ee_quaternion, False, now)

    sent, states = _drive(workcell, safety, command, steps=60)
    assert all(c.holding and c.events == (SafetyEvent.NON_FINITE,) for c in sent[20:])
    assert safety.counts[SafetyEvent.NON_FINITE] == 40
    drift = np.linalg.norm(states[-1].ee_position - states[30].ee_position)
    assert drift < 2e-3  # held where it was


def test_watchdogs_hold_on_stale_commands_and_observations(workcell) -> None:
    state = workcell.reset(3)
    safety = SafetyFilter(LIMITS, 0.01)
    safety.reset(state)
    now = state.timestamp_s
    fresh = CartesianTarget(state.ee_position + [0.001, 0, 0], state.ee_quaternion, False, now)
    assert not safety.filter(fresh, state, now).events
    old = dataclasses.replace(fresh, timestamp_s=now - LIMITS.command_timeout_s - 0.01)
    assert safety.filter(old, state, now).events == (SafetyEvent.STALE_COMMAND,)
    assert safety.filter(None, state, now).events == (SafetyEvent.STALE_COMMAND,)
    late = now + LIMITS.observation_timeout_s + 0.01
    out = safety.filter(dataclasses.replace(fresh, timestamp_s=late), state, late)
    assert out.events == (SafetyEvent.STALE_OBSERVATION,)
    np.testing.assert_allclose(out.target.position, state.ee_position)


def test_leaving_a_hold_ramps_up_from_rest(workcell) -> None:
    """After a hold the filter starts again from the measured pose at zero speed: no jump."""
    safety = SafetyFilter(LIMITS, 0.01)

    def command(i, state, now):
        if 10 <= i < 20:
            return None  # a stalled policy
        return CartesianTarget(state.ee_position + [0.0, 0.2, 0.0], state.ee_quaternion, False, now)

    sent, _ = _drive(workcell, safety, command, steps=30)
    positions = np.array([c.target.position for c in sent])
    period = workcell.control_period_s
    step_after_hold = np.linalg.norm(positions[20] - positions[19])
    assert step_after_hold <= LIMITS.max_linear_accel_m_s2 * period**2 + 1e-9


def test_deadman_and_latched_emergency_stop(workcell) -> None:
    state = workcell.reset(3)
    safety = SafetyFilter(LIMITS, 0.01, require_deadman=True)
    safety.reset(state)
    now = state.timestamp_s
    go = CartesianTarget(state.ee_position + [0.001, 0, 0], state.ee_quaternion, False, now)
    assert safety.filter(go, state, now, deadman_held=False).events == (
        SafetyEvent.DEADMAN_RELEASED,
    )
    assert not safety.filter(go, state, now, deadman_held=True).holding
    safety.emergency_stop("operator pressed e-stop")
    safety.reset(state)  # a new episode does not clear it
    assert safety.filter(go, state, now).events == (SafetyEvent.EMERGENCY_STOP,)
    safety.release_emergency_stop()
    assert not safety.filter(go, state, now).holding
    assert safety.summary() == {"deadman_released": 1, "emergency_stop": 1}


def test_gripper_cannot_chatter(workcell) -> None:
    safety = SafetyFilter(LIMITS, 0.01)
    sent, _ = _drive(
        workcell,
        safety,
        lambda i, s, now: CartesianTarget(s.ee_position, s.ee_quaternion, bool(i % 2), now),
        steps=100,
    )
    closed = np.array([c.target.gripper_closed for c in sent])
    switches = np.flatnonzero(np.diff(closed.astype(int))) + 1
    gaps_s = np.diff(switches) * workcell.control_period_s
    assert len(switches) >= 2 and gaps_s.min() >= LIMITS.gripper_min_switch_interval_s - 1e-9
    assert safety.counts[SafetyEvent.GRIPPER_RATE] >= 40


def test_rotation_is_speed_limited(workcell) -> None:
    safety = SafetyFilter(LIMITS, 0.01)
    flip = quat_from_rotvec_xyzw([0.0, 0.0, np.deg2rad(170)])
    sent, _ = _drive(
        workcell,
        safety,
        lambda i, s, now: CartesianTarget(
            s.ee_position, quat_multiply_xyzw(flip, s.ee_quaternion), False, now
        ),
        steps=40,
    )
    quats = [c.target.quaternion for c in sent]
    angles = np.array([quat_angle_rad(a, b) for a, b in zip(quats[:-1], quats[1:], strict=True)])
    assert angles.max() <= LIMITS.max_angular_speed_rad_s * workcell.control_period_s + 1e-9


def test_limits_files_are_checked(tmp_path) -> None:
    assert load_limits("fr3").workspace_min_m == RobotLimits().workspace_min_m
    typo = tmp_path / "cell.yaml"
    typo.write_text("max_linear_sped_m_s: 0.1\n")
    with pytest.raises(ValueError, match="unknown keys \\['max_linear_sped_m_s'\\]"):
        load_limits(typo)
    inverted = tmp_path / "inverted.yaml"
    inverted.write_text("workspace_min_m: [0.8, 0, 0]\nworkspace_max_m: [0.2, 1, 1]\n")
    with pytest.raises(ValueError, match="inverted.yaml.*workspace_min_m"):
        load_limits(inverted)
    with pytest.raises(FileNotFoundError, match="shipped: \\['fr3', 'fr3_sim'\\]"):
        load_limits("ur5")
    roundtrip = tmp_path / "copy.yaml"
    roundtrip.write_text(LIMITS.to_yaml())
    assert dataclasses.replace(load_limits(roundtrip), source=LIMITS.source) == LIMITS
