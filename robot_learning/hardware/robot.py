"""The Robot interface: state out, Cartesian/joint/gripper commands in.

Frames and units: positions in metres in the robot base frame (``fr3_link0``), orientations
as unit quaternions ordered (x, y, z, w) like ROS ``geometry_msgs``, joint angles in radians,
the end-effector is the hand TCP (``fr3_hand_tcp``, 0.1034 m beyond the flange).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field

import numpy as np

from robot_learning.errors import RobotLearningError
from robot_learning.hardware.device import Device


class RobotReflexError(RobotLearningError, RuntimeError):
    """The arm stopped itself (collision, limit, reflex); commands fail until ``recover()``.

    Real (franky) and simulated arms raise subclasses of this, so a collection loop or the
    runtime handles both the same way: drop the episode, recover, carry on.
    """


@dataclass(frozen=True)
class RobotState:
    """One sample of the arm's state on the station clock."""

    timestamp_s: float
    joint_positions: np.ndarray  # (7,) rad
    joint_velocities: np.ndarray  # (7,) rad/s
    ee_position: np.ndarray  # (3,) m, base frame
    ee_quaternion: np.ndarray  # (4,) x, y, z, w, base frame
    gripper_width_m: float  # distance between the fingers

    def ee_pose_vector(self) -> np.ndarray:
        """(7,) position + quaternion, the layout stored as ``robot_ee_pose``."""
        return np.concatenate([self.ee_position, self.ee_quaternion]).astype(np.float64)


@dataclass(frozen=True)
class CartesianTarget:
    """An absolute end-effector target in the base frame, plus the gripper command."""

    position: np.ndarray  # (3,) m
    quaternion: np.ndarray  # (4,) x, y, z, w
    gripper_closed: bool = False
    timestamp_s: float = field(default=0.0)  # when it was issued (station clock)

    def as_vector(self) -> np.ndarray:
        """(8,) position, quaternion, gripper (1 closed / 0 open): the stored action layout."""
        return np.concatenate(
            [self.position, self.quaternion, [1.0 if self.gripper_closed else 0.0]]
        ).astype(np.float64)

    @classmethod
    def holding(
        cls, state: RobotState, *, gripper_closed: bool = False, timestamp_s: float | None = None
    ) -> CartesianTarget:
        """Stay where the hand is (the measured pose): what every hold commands."""
        return cls(
            np.array(state.ee_position, dtype=np.float64),
            np.array(state.ee_quaternion, dtype=np.float64),
            gripper_closed,
            state.timestamp_s if timestamp_s is None else timestamp_s,
        )

    @classmethod
    def from_vector(cls, action: np.ndarray, timestamp_s: float = 0.0) -> CartesianTarget:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (8,):
            raise ValueError(f"a Cartesian action is (8,) pos+quat+gripper, got {action.shape}")
        return cls(action[:3], action[3:7], bool(action[7] > 0.5), timestamp_s)


class Robot(Device):
    """A 7-DoF arm with a parallel gripper. Context manager; connect/disconnect idempotent."""

    name: str = "robot"

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    def read_state(self) -> RobotState:
        """The latest state; never blocks longer than one control period."""

    @abstractmethod
    def send_cartesian_target(self, target: CartesianTarget) -> CartesianTarget:
        """Track ``target`` (non-blocking); returns what was actually sent after clamping."""

    @abstractmethod
    def move_joints(self, joint_positions: np.ndarray, *, blocking: bool = True) -> None:
        """Move to a joint configuration (rad)."""

    @abstractmethod
    def set_gripper(self, *, closed: bool) -> None:
        """Open, or close with grasp force (non-blocking)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop motion and hold the current pose."""

    @abstractmethod
    def recover(self) -> None:
        """Clear a reflex/error state so motion can resume."""
