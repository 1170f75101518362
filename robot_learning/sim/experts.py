"""Scripted experts: TeleopDevices that solve a task from the privileged simulator state.

An expert outputs exactly what a SpaceMouse would: a twist in the base frame, a gripper
command and a SUCCESS event when it believes the task is done. The caller integrates the
twist into a Cartesian target (``TwistIntegrator``), so demonstrations take the same path
as human teleoperation. Seeded Ornstein-Uhlenbeck noise on the twist makes demos differ.

Each task's expert is a small phase machine over ``servo`` (proportional control of the TCP,
or of a held object, towards a goal position and a top-down orientation with a yaw).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from robot_learning.geometry import TOP_DOWN_MAT, orientation_error, wrap_angle, yaw_mat, yaw_of_mat
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent
from robot_learning.sim.robot import SimRobot


@dataclass(frozen=True)
class ExpertGains:
    """Proportional gains and speed caps (below the TwistIntegrator's limits)."""

    linear_gain_per_s: float = 3.0
    angular_gain_per_s: float = 3.0
    max_linear_speed_m_s: float = 0.2
    max_angular_speed_rad_s: float = 0.8
    noise_time_constant_s: float = 0.3


@dataclass
class Plan:
    """What an expert wants this tick."""

    twist: np.ndarray
    gripper_closed: bool
    done: bool = False


class ScriptedExpert(TeleopDevice):
    """Base class: noise, the SUCCESS event, phase bookkeeping and the servo law."""

    def __init__(
        self,
        *,
        robot: SimRobot,
        rng: np.random.Generator,
        noise_m_s: float = 0.0,
        gains: ExpertGains | None = None,
    ) -> None:
        self.robot = robot
        self.gains = gains or ExpertGains()
        self._rng = rng
        self._noise_m_s = noise_m_s
        self._noise = np.zeros(6)
        self._reported_success = False
        self.phase = ""
        self._phase_start_s = 0.0
        self._last_s: float | None = None

    def read(self) -> TeleopCommand:
        state = self.robot.read_state()
        now_s = state.timestamp_s
        plan = self.plan(now_s)
        twist = plan.twist + self._next_noise(now_s)
        events: frozenset[TeleopEvent] = frozenset()
        if plan.done and not self._reported_success:
            self._reported_success = True
            events = frozenset({TeleopEvent.SUCCESS})
        return TeleopCommand(
            timestamp_s=now_s,
            twist=twist,
            gripper_closed=plan.gripper_closed,
            intervene=True,
            events=events,
        )

    @abstractmethod
    def plan(self, now_s: float) -> Plan:
        """The noiseless twist and gripper command for this tick."""

    # -- helpers for subclasses -----------------------------------------------------------
    def enter(self, phase: str, now_s: float) -> None:
        self.phase, self._phase_start_s = phase, now_s

    def time_in_phase(self, now_s: float) -> float:
        return now_s - self._phase_start_s

    def servo(
        self,
        goal_m: np.ndarray,
        yaw_rad: float,
        *,
        point_m: np.ndarray | None = None,
        max_speed_m_s: float | None = None,
    ) -> tuple[np.ndarray, float, float]:
        """Twist moving ``point_m`` (default: the TCP) to ``goal_m`` with a top-down yaw.

        Returns the twist, the remaining position error (m) and orientation error (rad).
        """
        position, mat = self.robot.tcp_pose()
        point = position if point_m is None else point_m
        error = np.asarray(goal_m, dtype=np.float64) - point
        linear = _clip_norm(
            self.gains.linear_gain_per_s * error,
            max_speed_m_s or self.gains.max_linear_speed_m_s,
        )
        rotation_error = orientation_error(yaw_mat(yaw_rad) @ TOP_DOWN_MAT, mat)
        angular = _clip_norm(
            self.gains.angular_gain_per_s * rotation_error, self.gains.max_angular_speed_rad_s
        )
        twist = np.concatenate([linear, angular])
        return twist, float(np.linalg.norm(error)), float(np.linalg.norm(rotation_error))

    def grasp_yaw(self, object_mat: np.ndarray) -> float:
        """The hand yaw that grasps a cube across two faces, nearest the current hand yaw."""
        _, mat = self.robot.tcp_pose()
        hand_yaw = yaw_of_mat(mat @ TOP_DOWN_MAT)
        cube_yaw = yaw_of_mat(object_mat)
        return hand_yaw + wrap_angle(cube_yaw - hand_yaw, np.pi / 2)

    def _next_noise(self, now_s: float) -> np.ndarray:
        if self._noise_m_s <= 0.0:
            return np.zeros(6)
        dt_s = 0.01 if self._last_s is None else max(now_s - self._last_s, 1e-6)
        self._last_s = now_s
        decay = np.exp(-dt_s / self.gains.noise_time_constant_s)
        scale = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0]) * self._noise_m_s  # rad/s: 2x
        self._noise = decay * self._noise + np.sqrt(1.0 - decay**2) * scale * self._rng.normal(
            size=6
        )
        return self._noise.copy()


def _clip_norm(vector: np.ndarray, max_norm: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (max_norm / norm) if norm > max_norm else vector
