"""FrankaRobot against a live franky-sim FR3 server (MuJoCo, libfranka protocol, 127.0.0.1).

The server runs in a subprocess started here, with virtual walls at z = WALL_Z_MIN_M so a
reflex can be provoked through the real protocol. The unreachable-host tests come first:
they need 127.0.0.1:1337 free, before the module's server starts.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest

from robot_learning.limits import load_limits

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from robot_learning.geometry import quat_multiply_xyzw  # noqa: E402
from robot_learning.hardware.franka import (  # noqa: E402
    FR3_READY_JOINTS_RAD,
    FrankaError,
    FrankaReflexError,
    FrankaRobot,
)
from robot_learning.hardware.robot import CartesianTarget  # noqa: E402
from robot_learning.sim.franky_server import (  # noqa: E402
    ROBOT_PORT,
    FrankySimServer,
    SimServerError,
)

HOST = "127.0.0.1"
WALL_Z_MIN_M = 0.45  # the ready pose's TCP is at z ~ 0.52
WALLS = ((0.15, -0.7, WALL_Z_MIN_M), (0.9, 0.7, 1.0))
POS_TOL_M = 0.002
ANGLE_TOL_RAD = 0.01
JOINT_TOL_RAD = 3e-3  # franky-sim leaves up to ~2e-3 rad steady-state error on joint 7


def _angle_between(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.arccos(min(1.0, abs(float(np.dot(a, b))))))


def _quat_about_z(angle_rad: float) -> np.ndarray:
    return np.array([0.0, 0.0, np.sin(angle_rad / 2), np.cos(angle_rad / 2)])


def _settle(arm: FrankaRobot, done, timeout_s: float = 5.0):  # noqa: ANN001, ANN202
    """franky reports a motion finished when its *command* arrives; the simulated arm
    converges to it over a few hundred ms. Poll (no timing claim) until ``done(state)``."""
    deadline = time.monotonic() + timeout_s
    state = arm.read_state()
    while not done(state) and time.monotonic() < deadline:
        time.sleep(0.02)
        state = arm.read_state()
    return state


# ------------------------------------------------------------ no robot at the address


def _port_in_use() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, ROBOT_PORT)) == 0


def test_connect_refused_names_host_quickly() -> None:
    if _port_in_use():
        pytest.skip(f"{HOST}:{ROBOT_PORT} is taken by another process")
    arm = FrankaRobot(host=HOST, enforce_realtime=False, connect_timeout_s=2.0)
    start = time.monotonic()
    with pytest.raises(FrankaError, match=HOST):
        arm.connect()
    assert time.monotonic() - start < 4.0
    assert not arm.is_connected


def test_connect_to_silent_host_times_out_naming_host() -> None:
    if _port_in_use():
        pytest.skip(f"{HOST}:{ROBOT_PORT} is taken by another process")
    # Accepts TCP but never speaks libfranka: libfranka alone would wait forever.
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, ROBOT_PORT))
        listener.listen(1)
        arm = FrankaRobot(host=HOST, enforce_realtime=False, connect_timeout_s=1.5)
        start = time.monotonic()
        with pytest.raises(FrankaError, match=rf"{HOST}.*no answer within 1.5 s"):
            arm.connect()
        assert time.monotonic() - start < 4.0
        assert not arm.is_connected


# ------------------------------------------------------------ the simulator server


@pytest.fixture(scope="module")
def sim() -> Iterator[FrankySimServer]:
    with FrankySimServer(host=HOST, virtual_walls_m=WALLS) as server:
        yield server


def _socket_addresses(pid: int) -> list[str]:
    """Local addresses of every TCP/UDP socket a process holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = []
    for table in ("tcp", "udp", "tcp6", "udp6"):
        with open(f"/proc/net/{table}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    addresses.append(fields[1].split(":")[0])
    return addresses


def test_sim_server_binds_loopback_only_and_refuses_a_second_copy(
    sim: FrankySimServer, arm: FrankaRobot
) -> None:
    arm.read_state()  # a client is connected, so the UDP sockets exist too
    addresses = _socket_addresses(sim.pid)
    assert len(addresses) >= 3  # robot TCP, gripper TCP, UDP state
    assert set(addresses) == {"0100007F"}, addresses  # 127.0.0.1, little-endian hex
    with pytest.raises(SimServerError, match=f"{HOST}:{ROBOT_PORT} is already in use"):
        FrankySimServer(host=HOST).start()


def test_sim_server_rejects_non_loopback_address() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FrankySimServer(host="192.0.2.1")


@pytest.fixture(scope="module")
def arm(sim: FrankySimServer) -> Iterator[FrankaRobot]:
    with FrankaRobot(host=sim.host, enforce_realtime=False, relative_dynamics_factor=0.2) as robot:
        yield robot


@pytest.fixture
def ready(arm: FrankaRobot) -> FrankaRobot:
    """Each motion test starts recovered, at the ready pose, gripper open."""
    if arm.has_errors:
        arm.recover()
    arm.move_joints(FR3_READY_JOINTS_RAD)
    _settle(arm, lambda s: np.abs(s.joint_positions - FR3_READY_JOINTS_RAD).max() < JOINT_TOL_RAD)
    return arm


def test_connect_and_disconnect_are_idempotent(sim: FrankySimServer, arm: FrankaRobot) -> None:
    arm.disconnect()
    arm.disconnect()
    assert not arm.is_connected
    with pytest.raises(FrankaError, match="not connected"):
        arm.read_state()
    arm.connect()
    arm.connect()
    assert arm.is_connected
    assert arm.read_state().joint_positions.shape == (7,)


def test_read_state_is_measured_and_on_the_station_clock(ready: FrankaRobot) -> None:
    from franky_sim.mujoco_simulator import FrankaMujocoRobot

    before_s = time.time()
    state = ready.read_state()
    assert abs(state.timestamp_s - before_s) < 0.5
    np.testing.assert_allclose(state.joint_positions, FR3_READY_JOINTS_RAD, atol=JOINT_TOL_RAD)
    assert state.joint_velocities.shape == (7,)
    assert np.all(np.abs(state.joint_velocities) < 0.05)
    assert abs(np.linalg.norm(state.ee_quaternion) - 1.0) < 1e-9
    # The TCP pose is forward kinematics of the *measured* joints (franky-sim's own model).
    fk = FrankaMujocoRobot().kinematics(state.joint_positions)
    np.testing.assert_allclose(state.ee_position, fk.translation, atol=1e-5)
    assert 0.0 < state.gripper_width_m <= 0.08
    time.sleep(0.02)
    assert ready.read_state().timestamp_s > state.timestamp_s


def test_move_joints_reaches_target_and_rejects_limits(ready: FrankaRobot) -> None:
    target = FR3_READY_JOINTS_RAD + np.array([0.3, -0.2, 0.0, 0.2, 0.0, 0.1, -0.3])
    ready.move_joints(target)
    state = _settle(ready, lambda s: np.abs(s.joint_positions - target).max() < JOINT_TOL_RAD)
    np.testing.assert_allclose(state.joint_positions, target, atol=JOINT_TOL_RAD)

    beyond = target.copy()
    beyond[3] = 0.5  # joint 4 must stay below -0.15 rad
    with pytest.raises(ValueError, match=r"joint 4 target 0\.5000 rad is outside"):
        ready.move_joints(beyond)
    np.testing.assert_allclose(ready.read_state().joint_positions, target, atol=JOINT_TOL_RAD)


def test_cartesian_target_reaches_pose(ready: FrankaRobot) -> None:
    start = ready.read_state()
    goal_position = start.ee_position + np.array([0.05, -0.04, 0.03])
    goal_quat = quat_multiply_xyzw(_quat_about_z(0.2), start.ee_quaternion)
    target = CartesianTarget(goal_position, goal_quat, timestamp_s=time.time())
    sent = ready.send_cartesian_target(target)
    np.testing.assert_allclose(sent.position, goal_position)  # nothing to clamp
    assert ready.wait_for_motion(timeout_s=10.0)
    state = _settle(
        ready,
        lambda s: (
            np.linalg.norm(s.ee_position - goal_position) < POS_TOL_M
            and _angle_between(s.ee_quaternion, goal_quat) < ANGLE_TOL_RAD
        ),
    )
    assert np.linalg.norm(state.ee_position - goal_position) < POS_TOL_M
    assert _angle_between(state.ee_quaternion, goal_quat) < ANGLE_TOL_RAD


def test_motion_mode_reaches_pose(sim: FrankySimServer, arm: FrankaRobot) -> None:
    """cartesian_mode="motion": each target is a Ruckig CartesianMotion (the sim takes one
    client at a time, so the module's arm steps aside)."""
    arm.disconnect()
    try:
        with FrankaRobot(host=sim.host, enforce_realtime=False, cartesian_mode="motion") as other:
            start = other.read_state()
            goal = start.ee_position + np.array([0.03, 0.03, -0.03])
            other.send_cartesian_target(CartesianTarget(goal, start.ee_quaternion))
            assert other.wait_for_motion(timeout_s=10.0)
            state = _settle(other, lambda s: np.linalg.norm(s.ee_position - goal) < POS_TOL_M)
            assert np.linalg.norm(state.ee_position - goal) < POS_TOL_M
    finally:
        arm.connect()


def test_cartesian_targets_are_clamped_to_step_and_workspace(ready: FrankaRobot) -> None:
    state = ready.read_state()
    far = CartesianTarget(state.ee_position + np.array([0.0, 0.4, 0.0]), state.ee_quaternion)
    clamped = ready.clamp_cartesian_target(far, state)
    step_m = ready.limits.max_lead_m
    np.testing.assert_allclose(clamped.position, state.ee_position + [0.0, step_m, 0.0])
    tilted = CartesianTarget(
        state.ee_position, quat_multiply_xyzw(_quat_about_z(2.0), state.ee_quaternion)
    )
    turned = ready.clamp_cartesian_target(tilted, state)
    angle = _angle_between(turned.quaternion, state.ee_quaternion)
    assert angle == pytest.approx(ready.limits.max_lead_rad, abs=1e-6)
    low = CartesianTarget(state.ee_position * [1, 1, 0] - [0, 0, 0.05], state.ee_quaternion)
    floor = load_limits("fr3").workspace_min_m[2]
    assert ready.clamp_cartesian_target(low, state).position[2] >= floor
    with pytest.raises(ValueError, match="quaternion"):
        ready.send_cartesian_target(CartesianTarget(state.ee_position, np.zeros(4)))


def test_streamed_targets_are_followed(ready: FrankaRobot) -> None:
    from franky_sim.mujoco_simulator import FrankaMujocoRobot

    fk = FrankaMujocoRobot()
    start = ready.read_state()
    period_s = 0.01
    next_s = time.monotonic()
    for i in range(100):  # 1 s at 100 Hz, a 4 cm ramp in y
        goal = start.ee_position + np.array([0.0, 0.04 * (i + 1) / 100, 0.0])
        ready.send_cartesian_target(CartesianTarget(goal, start.ee_quaternion))
        if i % 20 == 10:  # mid-motion the reported TCP is still that of the measured joints
            state = ready.read_state()
            measured = fk.kinematics(state.joint_positions).translation
            np.testing.assert_allclose(state.ee_position, measured, atol=1e-5)
        next_s += period_s
        time.sleep(max(0.0, next_s - time.monotonic()))
    final = start.ee_position + np.array([0.0, 0.04, 0.0])
    ready.wait_for_motion(timeout_s=10.0)
    state = _settle(ready, lambda s: np.linalg.norm(s.ee_position - final) < POS_TOL_M)
    assert np.linalg.norm(state.ee_position - final) < POS_TOL_M


def test_gripper_close_and_open_change_width(ready: FrankaRobot) -> None:
    ready.set_gripper(closed=True)
    assert ready.wait_for_gripper(timeout_s=5.0)
    closed = _settle(ready, lambda s: s.gripper_width_m < 0.005)
    assert closed.gripper_width_m < 0.005
    ready.set_gripper(closed=False)
    assert ready.wait_for_gripper(timeout_s=5.0)
    opened = _settle(ready, lambda s: s.gripper_width_m > 0.07)
    assert opened.gripper_width_m > 0.07


def test_reflex_then_recover_and_move_again(ready: FrankaRobot) -> None:
    """franky-sim has no reflexes of its own; the test server's virtual wall produces a real
    libfranka reflex (Move aborted, robot mode Reflex, cartesian_position_limits_violation)."""
    start = ready.read_state()
    through_wall = CartesianTarget(start.ee_position - [0.0, 0.0, 0.10], start.ee_quaternion)
    ready.send_cartesian_target(through_wall)
    with pytest.raises(FrankaReflexError, match=rf"{HOST}.*cartesian_position_limits_violation"):
        ready.wait_for_motion(timeout_s=10.0)
    assert ready.has_errors
    stopped_z = ready.read_state().ee_position[2]
    assert WALL_Z_MIN_M - 0.01 < stopped_z < WALL_Z_MIN_M  # stopped at the wall, not the target
    with pytest.raises(FrankaError):
        ready.send_cartesian_target(CartesianTarget(start.ee_position, start.ee_quaternion))
        ready.wait_for_motion(timeout_s=10.0)

    ready.recover()
    assert not ready.has_errors
    ready.send_cartesian_target(CartesianTarget(start.ee_position, start.ee_quaternion))
    assert ready.wait_for_motion(timeout_s=10.0)
    state = _settle(ready, lambda s: np.linalg.norm(s.ee_position - start.ee_position) < POS_TOL_M)
    assert np.linalg.norm(state.ee_position - start.ee_position) < POS_TOL_M


def test_stop_halts_motion_and_holds(ready: FrankaRobot) -> None:
    start = ready.read_state()
    goal = start.ee_position + np.array([0.09, 0.0, 0.0])
    ready.send_cartesian_target(CartesianTarget(goal, start.ee_quaternion))
    time.sleep(0.25)
    ready.stop()
    held = _settle(ready, lambda s: np.abs(s.joint_velocities).max() < 0.01)
    time.sleep(0.3)
    later = ready.read_state()
    assert np.linalg.norm(later.ee_position - held.ee_position) < 1e-3
    assert np.linalg.norm(later.ee_position - goal) > 0.01  # it did not carry on to the goal
    ready.stop()  # idle stop is a no-op
    ready.move_joints(FR3_READY_JOINTS_RAD)  # and the arm still takes commands


def test_lost_connection_is_reported_and_recover_reconnects(
    sim: FrankySimServer, arm: FrankaRobot
) -> None:
    sim.stop()
    try:
        with pytest.raises(FrankaError, match=rf"{HOST}.*call recover\(\)"):
            arm.read_state()
    finally:
        sim.start()
    arm.recover()
    np.testing.assert_allclose(arm.read_state().joint_positions, FR3_READY_JOINTS_RAD, atol=0.01)
