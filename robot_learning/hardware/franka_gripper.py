"""The Franka Hand through franky: commands sent only on change, the width polled aside.

Gripper commands are asynchronous franky futures, so the control loop never waits on the
fingers; a background thread keeps the latest width because libfranka's gripper read
blocks until the gripper's next (slow) state packet.
"""

from __future__ import annotations

import logging
import threading
import time

from robot_learning.hardware.franka_errors import FrankaError

logger = logging.getLogger(__name__)


class GripperPoller:
    """Keeps the newest gripper width; libfranka's gripper read blocks until its next packet."""

    def __init__(self, gripper: object) -> None:
        self._gripper = gripper
        self._width_m = float(gripper.width)  # type: ignore[attr-defined]
        self._running = True
        self._thread = threading.Thread(target=self._run, name="franka-gripper", daemon=True)
        self._thread.start()

    @property
    def width_m(self) -> float:
        return self._width_m

    def _run(self) -> None:
        failing = False
        while self._running:
            try:
                self._width_m = float(self._gripper.state.width)  # type: ignore[attr-defined]
                failing = False
            except Exception as exc:  # noqa: BLE001 - a lost gripper must not kill the arm
                if not failing:
                    logger.warning("gripper state read failed (keeping last width): %s", exc)
                failing = True
                time.sleep(0.1)

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=1.0)


class FrankaGripper:
    """A connected ``franky.Gripper``: open/grasp commands, the newest width, clean release."""

    def __init__(self, gripper: object, *, host: str) -> None:
        self.host = host
        self._gripper = gripper
        self._poller = GripperPoller(gripper)
        self._closed_cmd: bool | None = None
        self._future = None

    @property
    def width_m(self) -> float:
        return self._poller.width_m

    def command(self, *, closed: bool, speed_m_s: float, grasp_force_n: float) -> None:
        """Open, or grasp with ``grasp_force_n``; only sends when the command changes."""
        if closed == self._closed_cmd:
            return
        gripper = self._gripper
        try:
            if closed:
                # Width 0 with wide tolerances: any object (or none) counts as a grasp, and
                # the fingers keep pressing with the grasp force.
                self._future = gripper.grasp_async(  # type: ignore[attr-defined]
                    0.0, speed_m_s, grasp_force_n, 0.1, 0.1
                )
            else:
                self._future = gripper.open_async(speed_m_s)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            raise FrankaError(f"franka gripper at {self.host}: command failed: {exc}") from exc
        self._closed_cmd = closed

    def wait(self, timeout_s: float) -> bool:
        """Block until the last command finished; False on timeout."""
        if self._future is None:
            return True
        return bool(self._future.wait(timeout_s))

    def release(self) -> None:
        """Stop polling and drop the franky objects, future first: franky segfaults when a
        pending gripper future outlives its Gripper."""
        self._poller.stop()
        if self._future is not None and not self._future.wait(2.0):
            logger.warning("franka gripper at %s: command still running at disconnect", self.host)
        self._future = None
        self._gripper = None
