"""The lockstep robot: Cartesian tracking, clamping, gripper grasp, reflex and recovery."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robot_learning.geometry import mat_from_quat_xyzw, orientation_error
from robot_learning.hardware.robot import CartesianTarget, Robot
from robot_learning.limits import load_limits
from robot_learning.sim.robot import SimReflexError
from robot_learning.sim.workcell import Workcell


@pytest.fixture
def workcell():
    with Workcell(task="lift", seed=0) as cell:
        yield cell


def run_to(workcell, position, quaternion, *, closed=False, seconds=1.5):
    target = CartesianTarget(np.asarray(position, float), np.asarray(quaternion, float), closed)
    for _ in range(int(seconds / workcell.control_period_s)):
        state = workcell.step(target)
    return state


def test_is_a_robot_with_simulated_clock(workcell):
    assert isinstance(workcell.robot, Robot)
    state = workcell.robot.read_state()
    workcell.step(workcell.home_target())
    assert workcell.robot.read_state().timestamp_s == pytest.approx(state.timestamp_s + 0.01)


def test_home_pose_is_the_ready_pose(workcell):
    state = workcell.robot.read_state()
    np.testing.assert_allclose(state.ee_position, [0.554, 0.0, 0.521], atol=2e-3)
    np.testing.assert_allclose(np.abs(state.ee_quaternion), [1.0, 0.0, 0.0, 0.0], atol=2e-3)
    assert state.gripper_width_m == pytest.approx(0.08, abs=1e-3)


def test_tracks_a_cartesian_target(workcell):
    quaternion = np.array([np.cos(0.2), np.sin(0.2), 0.0, 0.0])  # top-down, yawed 0.4 rad
    goal = np.array([0.45, 0.15, 0.3])
    state = run_to(workcell, goal, quaternion, seconds=2.0)
    np.testing.assert_allclose(state.ee_position, goal, atol=2e-3)
    rotation = orientation_error(
        mat_from_quat_xyzw(quaternion), mat_from_quat_xyzw(state.ee_quaternion)
    )
    assert np.linalg.norm(rotation) < 0.01


def test_targets_are_clamped_and_validated(workcell):
    home = workcell.home_target()
    sent = workcell.robot.send_cartesian_target(
        CartesianTarget(np.array([0.5, 0.0, -0.3]), home.quaternion * 2.0)
    )
    assert sent.position[2] == pytest.approx(workcell.robot.limits.workspace_min_m[2])
    assert np.linalg.norm(sent.quaternion) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not finite"):
        workcell.robot.send_cartesian_target(
            CartesianTarget(np.array([np.nan, 0, 0.3]), home.quaternion)
        )


def test_gripper_opens_and_closes(workcell):
    home = workcell.home_target()
    closed = run_to(workcell, home.position, home.quaternion, closed=True, seconds=1.0)
    assert closed.gripper_width_m < 0.002
    opened = run_to(workcell, home.position, home.quaternion, closed=False, seconds=1.0)
    assert opened.gripper_width_m > 0.078


def test_grasp_lifts_the_cube(workcell):
    cube = workcell.task.cube
    cube.place(np.array([0.5, 0.05, 0.025]), yaw_rad=0.0)
    down = workcell.home_target().quaternion
    run_to(workcell, [0.5, 0.05, 0.12], down)
    run_to(workcell, [0.5, 0.05, 0.025], down)
    held = run_to(workcell, [0.5, 0.05, 0.025], down, closed=True, seconds=0.6)
    assert held.gripper_width_m == pytest.approx(0.05, abs=3e-3)  # the cube is 5 cm wide
    lifted = run_to(workcell, [0.5, 0.05, 0.2], down, closed=True, seconds=2.0)
    assert cube.position[2] > 0.17
    assert abs(cube.position[2] - lifted.ee_position[2]) < 0.01  # held between the fingers
    assert np.linalg.norm(cube.position[:2] - lifted.ee_position[:2]) < 0.02
    assert workcell.is_success()
    run_to(workcell, [0.5, 0.05, 0.2], down, closed=False, seconds=1.0)
    assert cube.position[2] < 0.03  # let go: it falls back to the table


def test_move_joints_blocking(workcell):
    goal = np.array([0.3, -0.2, 0.1, -2.0, 0.0, 1.8, 0.6])
    workcell.robot.move_joints(goal)
    np.testing.assert_allclose(workcell.robot.read_state().joint_positions, goal, atol=3e-3)
    with pytest.raises(ValueError, match="joint limits"):
        workcell.robot.move_joints(np.array([0.0, 0.0, 0.0, 0.5, 0.0, 1.5, 0.0]))


def test_collision_reflex_stops_until_recover():
    limits = dataclasses.replace(load_limits("fr3_sim"), workspace_min_m=(0.15, -0.55, -0.2))
    with Workcell(task="lift", limits=limits) as workcell:
        home = workcell.home_target()
        into_table = CartesianTarget(np.array([0.4, -0.2, -0.1]), home.quaternion)
        for _ in range(300):
            try:
                workcell.step(into_table)
            except SimReflexError:
                break
        assert workcell.robot.error is not None and "reflex" in workcell.robot.error
        with pytest.raises(SimReflexError, match="recover"):
            workcell.robot.send_cartesian_target(home)
        workcell.robot.recover()
        assert workcell.robot.error is None
        run_to(workcell, home.position, home.quaternion, seconds=2.0)
        np.testing.assert_allclose(
            workcell.robot.read_state().ee_position, home.position, atol=3e-3
        )
