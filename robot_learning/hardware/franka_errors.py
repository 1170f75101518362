"""What the Franka arm and gripper raise: failures naming the host, reflexes told apart."""

from __future__ import annotations

from robot_learning.errors import RobotLearningError
from robot_learning.hardware.robot import RobotReflexError


class FrankaError(RobotLearningError, RuntimeError):
    """A command or connection to the arm failed; the message names the host."""


class FrankaReflexError(FrankaError, RobotReflexError):
    """The robot stopped itself (reflex); call ``recover()`` before moving again."""
