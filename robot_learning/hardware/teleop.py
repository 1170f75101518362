"""The TeleopDevice interface: a 6-DoF twist, a gripper command, buttons and episode events."""

from __future__ import annotations

import enum
from abc import abstractmethod
from dataclasses import dataclass, field

import numpy as np

from robot_learning.hardware.device import Device


class TeleopEvent(enum.Enum):
    """Operator events that drive an episode (one press, reported once)."""

    START = "start"
    SUCCESS = "success"
    FAIL = "fail"
    DISCARD = "discard"


@dataclass(frozen=True)
class TeleopCommand:
    """One reading of the device on the station clock.

    ``twist`` is (vx, vy, vz, wx, wy, wz) in m/s and rad/s in the robot base frame (REP-103
    axes: x forward, y left, z up). ``intervene`` is the deadman/intervention button: True
    while the operator wants control.
    """

    timestamp_s: float
    twist: np.ndarray  # (6,)
    gripper_closed: bool
    intervene: bool = False
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)


class TeleopDevice(Device):
    """A SpaceMouse, keyboard or scripted expert. Context manager.

    connect/disconnect override Device's abstract ones with no-op hooks: a scripted expert
    has nothing to open, so it should not have to write two empty methods.
    """

    def connect(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Open the device (idempotent). Devices with nothing to open need not override."""

    def disconnect(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release the device (idempotent)."""

    @abstractmethod
    def read(self) -> TeleopCommand:
        """The current command; never blocks longer than one control period."""
