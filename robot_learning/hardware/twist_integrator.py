"""Turn teleop twists into absolute Cartesian targets, the one path every teleop device takes.

A SpaceMouse, a keyboard and the simulator's scripted expert all output a twist (m/s, rad/s,
base frame); the arm takes absolute TCP targets. ``TwistIntegrator`` integrates one into the
other with the safety habits of a real station: it starts from the measured pose (nothing
jumps), clamps linear and angular speed, keeps the target inside a workspace box, and keeps
it within ``max_lead_m`` of the measured TCP so a target cannot wind up far ahead of an arm
that is blocked (pushing on the table, holding a heavy object).
"""

from __future__ import annotations

import numpy as np

from robot_learning.geometry import quat_from_rotvec_xyzw, quat_multiply_xyzw
from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.hardware.teleop import TeleopCommand
from robot_learning.limits import RobotLimits, load_limits


class TwistIntegrator:
    """Integrates TeleopCommand twists into CartesianTargets; seed it with ``reset(state)``."""

    def __init__(self, *, limits: RobotLimits | None = None) -> None:
        """``limits``: the robot's limits file (default ``fr3``): speed, box and lead."""
        self.limits = limits or load_limits("fr3")
        self._position: np.ndarray | None = None
        self._quaternion: np.ndarray | None = None

    def reset(self, state: RobotState) -> None:
        """Start from the measured TCP pose, so the first target does not move the arm."""
        self._position = np.clip(
            np.asarray(state.ee_position, dtype=np.float64),
            self.limits.workspace_min_m,
            self.limits.workspace_max_m,
        )
        quaternion = np.asarray(state.ee_quaternion, dtype=np.float64)
        self._quaternion = quaternion / np.linalg.norm(quaternion)

    def step(
        self, command: TeleopCommand, dt_s: float, *, state: RobotState | None = None
    ) -> CartesianTarget:
        """Advance the target by ``command.twist`` over ``dt_s``; clamp speed, box and lead."""
        if self._position is None or self._quaternion is None:
            raise RuntimeError("TwistIntegrator.step before reset(state): no pose to start from")
        twist = np.asarray(command.twist, dtype=np.float64)
        if twist.shape != (6,) or not np.all(np.isfinite(twist)):
            raise ValueError(f"teleop twist must be 6 finite numbers, got {command.twist!r}")
        if dt_s <= 0:
            raise ValueError(f"dt_s must be positive, got {dt_s}")
        linear = _clip_norm(twist[:3], self.limits.max_linear_speed_m_s)
        angular = _clip_norm(twist[3:], self.limits.max_angular_speed_rad_s)
        position = self._position + linear * dt_s
        if state is not None:
            lead = position - state.ee_position
            position = state.ee_position + _clip_norm(lead, self.limits.max_lead_m)
        self._position = np.clip(position, self.limits.workspace_min_m, self.limits.workspace_max_m)
        # Angular velocity is in the base frame, so the increment multiplies from the left.
        quaternion = quat_multiply_xyzw(quat_from_rotvec_xyzw(angular * dt_s), self._quaternion)
        self._quaternion = quaternion / np.linalg.norm(quaternion)
        return CartesianTarget(
            position=self._position.copy(),
            quaternion=self._quaternion.copy(),
            gripper_closed=command.gripper_closed,
            timestamp_s=command.timestamp_s,
        )


def _clip_norm(vector: np.ndarray, max_norm: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (max_norm / norm) if norm > max_norm else vector
