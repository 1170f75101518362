"""A policy and an operator that live in other processes, as a controller and a device.

In a distributed deployment (the ROS 2 graph: policy_node, teleop_node, arbiter_node) the
policy's chunks and the operator's device readings arrive as messages. These two adapters
let the same ``InterventionArbiter`` and ``SafetyFilter`` that run in-process drive the arm
from them: whoever receives the messages pushes them in, and the control loop asks as usual.

``ChunkStreamController`` plays pushed chunks with a ``ChunkExecutor`` by their absolute
times (latency compensation), holds until a chunk predicted after the last (re-)anchor has
arrived, and reports the policy as stalled when chunks stop coming. ``StreamedTeleop`` is the
newest twist and buttons of a remote device; a twist older than ``max_twist_age_s`` reads
as zero (a device that stopped publishing must not keep moving the arm).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice
from robot_learning.runtime.chunk import ActionChunk
from robot_learning.runtime.controllers import Command, Controller
from robot_learning.runtime.executor import ChunkExecutor, ExecutionConfig


class ChunkStreamController(Controller):
    """Chunks from a policy elsewhere; ``push`` them as they arrive, ``command`` each tick.

    ``clock`` is the station clock (chunks are looked up at the present, not at the state's
    stamp). ``silence_s``: how long after the last chunk (or the anchor) the policy may stay
    silent before ``stalled_for_s`` turns positive; it must exceed the re-plan period.
    """

    def __init__(
        self, execution: ExecutionConfig, *, clock: Callable[[], float], silence_s: float
    ) -> None:
        if silence_s <= 0:
            raise ValueError(f"silence_s must be positive, got {silence_s}")
        self.execution = execution
        self.executor = ChunkExecutor(execution)
        self.clock = clock
        self.silence_s = silence_s
        self.anchor_s = float("-inf")  # chunks predicted before this are stale plans
        self.reanchors = 0  # begin and every hand-back: the policy should re-plan at once
        self.chunks = 0
        self.dropped = 0  # predicted before the anchor
        self.ages_s: list[float] = []  # observation age when each chunk arrived
        self._has_chunk = False
        self._last_rx_s = float("-inf")
        self._gripper_closed = False
        # (start_s of the chunk the last command read, the clock time it was read at);
        # None while holding
        self.last_read: tuple[float, float] | None = None

    def push(self, chunk: ActionChunk, *, received_s: float) -> bool:
        """Queue a chunk; False when it was predicted before the anchor (dropped)."""
        if chunk.start_s < self.anchor_s:
            self.dropped += 1
            return False
        self.executor.add(chunk, received_s=received_s)
        self.ages_s.append(received_s - chunk.start_s)
        self.chunks += 1
        self._has_chunk = True
        self._last_rx_s = received_s
        return True

    def begin(self, state: RobotState) -> None:
        self._gripper_closed = False
        self.reanchor()

    def reanchor(self) -> None:
        """Forget the plan; hold until a chunk predicted from a later observation arrives."""
        self.executor.reset()
        self._has_chunk = False
        self.anchor_s = self.clock()
        self._last_rx_s = self.anchor_s
        self.reanchors += 1

    def end(self) -> None:
        self.executor.reset()
        self._has_chunk = False

    @property
    def stalled_for_s(self) -> float:
        return max(0.0, self.clock() - self._last_rx_s - self.silence_s)

    def command(self, state: RobotState, period_s: float) -> Command:
        now = self.clock()
        if not self._has_chunk:
            self.last_read = None
            return Command(
                CartesianTarget.holding(
                    state, gripper_closed=self._gripper_closed, timestamp_s=now
                ),
                holding=True,
            )
        target = self.executor.target(now)
        start_s = self.executor.newest_start_s
        assert start_s is not None  # target() just read a chunk
        self.last_read = (start_s, now)
        self._gripper_closed = target.gripper_closed
        return Command(target)


class StreamedTeleop(TeleopDevice):
    """The newest reading of a device read by another process (twist, gripper, intervene)."""

    def __init__(self, *, clock: Callable[[], float], max_twist_age_s: float = 0.2) -> None:
        self.clock = clock
        self.max_twist_age_s = max_twist_age_s
        self._twist = np.zeros(6)
        self._twist_s = float("-inf")
        self.gripper_closed = False
        self.intervene = False

    def update_twist(self, twist: np.ndarray, stamp_s: float) -> None:
        twist = np.asarray(twist, dtype=np.float64)
        if twist.shape != (6,):
            raise ValueError(f"teleop twist must be 6 values (m/s, rad/s), got {twist.shape}")
        self._twist = np.where(np.isfinite(twist), twist, 0.0)
        self._twist_s = stamp_s

    def update_buttons(self, *, gripper_closed: bool, intervene: bool) -> None:
        self.gripper_closed = gripper_closed
        self.intervene = intervene

    def read(self) -> TeleopCommand:
        now = self.clock()
        fresh = now - self._twist_s <= self.max_twist_age_s
        return TeleopCommand(
            now,
            self._twist.copy() if fresh else np.zeros(6),
            self.gripper_closed,
            intervene=self.intervene,
        )
