"""TwistIntegrator: twists become clamped absolute targets, starting from the measured pose."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.hardware.robot import RobotState
from robot_learning.hardware.teleop import TeleopCommand
from robot_learning.hardware.twist_integrator import TwistIntegrator
from robot_learning.limits import RobotLimits

DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # x, y, z, w: TCP pointing down


def state(position=(0.5, 0.0, 0.3), quaternion=DOWN) -> RobotState:
    return RobotState(
        0.0, np.zeros(7), np.zeros(7), np.array(position, float), np.array(quaternion, float), 0.08
    )


def command(twist, closed=False) -> TeleopCommand:
    return TeleopCommand(timestamp_s=1.0, twist=np.array(twist, float), gripper_closed=closed)


def test_needs_reset_first():
    with pytest.raises(RuntimeError, match="reset"):
        TwistIntegrator().step(command([0] * 6), 0.01)


def test_zero_twist_holds_the_measured_pose():
    integrator = TwistIntegrator()
    integrator.reset(state())
    target = integrator.step(command([0] * 6, closed=True), 0.01)
    np.testing.assert_allclose(target.position, [0.5, 0.0, 0.3])
    np.testing.assert_allclose(target.quaternion, DOWN)
    assert target.gripper_closed and target.timestamp_s == 1.0


def test_linear_speed_is_clamped():
    integrator = TwistIntegrator(limits=RobotLimits(max_linear_speed_m_s=0.1, max_lead_m=1.0))
    integrator.reset(state())
    for _ in range(10):
        target = integrator.step(command([3.0, 4.0, 0, 0, 0, 0]), 0.1)
    np.testing.assert_allclose(target.position - [0.5, 0.0, 0.3], [0.06, 0.08, 0.0], atol=1e-9)


def test_workspace_box_and_lead_are_enforced():
    limits = RobotLimits(workspace_min_m=(0.2, -0.5, 0.05), max_lead_m=0.05)
    integrator = TwistIntegrator(limits=limits)
    integrator.reset(state())
    for _ in range(100):
        target = integrator.step(command([0, 0, -0.25, 0, 0, 0]), 0.1)
    assert target.position[2] == pytest.approx(0.05)
    integrator.reset(state())
    blocked = state()  # the arm does not move
    for _ in range(100):
        target = integrator.step(command([0.25, 0, 0, 0, 0, 0]), 0.1, state=blocked)
    assert np.linalg.norm(target.position - blocked.ee_position) == pytest.approx(0.05)


def test_angular_velocity_rotates_about_base_axes():
    integrator = TwistIntegrator()
    integrator.reset(state())
    for _ in range(50):
        target = integrator.step(command([0, 0, 0.5, 0, 0, 0.5][:3] + [0, 0, 0.5]), 0.01)
    # 0.25 rad about base z, applied on top of the top-down orientation.
    expected = np.array([np.cos(0.125), np.sin(0.125), 0.0, 0.0])
    assert abs(target.quaternion @ expected) == pytest.approx(1.0, abs=1e-9)


def test_bad_input_is_named():
    integrator = TwistIntegrator()
    integrator.reset(state())
    with pytest.raises(ValueError, match="twist"):
        integrator.step(command([np.nan, 0, 0, 0, 0, 0]), 0.01)
    with pytest.raises(ValueError, match="dt_s"):
        integrator.step(command([0] * 6), 0.0)
    with pytest.raises(ValueError, match="workspace"):
        RobotLimits(workspace_min_m=(1.0, 0.0, 0.0))
