"""The context-manager shape every hardware interface shares (Robot, Camera, TeleopDevice).

``with device:`` connects on entry and disconnects on exit, even when the body raises, so a
crashed collection script still releases the arm, the camera and the teleop device.
Implementations make connect/disconnect idempotent, so an explicit ``disconnect()`` inside
the block is harmless.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Device(ABC):
    """Something to open and release; a context manager over ``connect``/``disconnect``."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    @abstractmethod
    def connect(self) -> None:
        """Open the device (idempotent)."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the device (idempotent)."""
