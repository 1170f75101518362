"""Chunk execution at the control rate: the half of a policy that decides how it moves.

A chunk's targets are spaced at the policy (store) rate, 10 Hz in the simulator, but the arm
is commanded at the control rate (100 Hz). Holding each target for 10 ticks makes the arm
jerk and stall, so the executor *interpolates* the chunk at every tick (linear position,
slerp rotation). Targets are looked up by absolute time: a chunk predicted from an old
observation starts part-way in, which drops the actions whose time has passed (latency
compensation). A new chunk is requested once ``execute_steps`` of the current one have
played (Diffusion Policy's action horizon), or at every policy step with temporal
ensembling (ACT), where all chunks covering the current time are averaged with weights
``exp(-k * i)``, i = 0 for the oldest (the paper's scheme). ``speed`` > 1 plays every chunk
faster than it was predicted (as SAIL, "faster-than-demonstration execution", CoRL 2025):
the targets stay, the times between them shrink, and re-planning comes sooner to match.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_learning.hardware.robot import CartesianTarget
from robot_learning.runtime.chunk import ActionChunk

SPEED_RANGE = (0.25, 4.0)  # playback speeds accepted: beyond 4x no arm follows a 10 Hz plan


@dataclass(frozen=True)
class ExecutionConfig:
    """How chunks are played back. ``execute_steps`` counts chunk steps (policy periods)."""

    execute_steps: int = 8
    temporal_ensemble_k: float | None = None  # None: no ensembling; ACT uses 0.01
    interpolate: bool = True  # False: hold each target until the next (for comparison)
    # True: a chunk is played by the times it was predicted for, so steps whose time passed
    # while the model thought are skipped. False: it starts when it arrives (for comparison).
    latency_compensation: bool = True
    # Playback speed: 1 plays chunks at the rate they were predicted (the demonstrations'
    # speed); 1.5 reaches each target in two thirds of the time. The safety filter's speed
    # and acceleration limits still bound every command.
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.execute_steps < 1:
            raise ValueError(f"execute_steps must be >= 1, got {self.execute_steps}")
        low, high = SPEED_RANGE
        if not low <= self.speed <= high:
            raise ValueError(f"speed must be in [{low:g}, {high:g}], got {self.speed}")
        if self.temporal_ensemble_k is not None and self.temporal_ensemble_k < 0:
            raise ValueError(f"temporal_ensemble_k must be >= 0, got {self.temporal_ensemble_k}")

    @property
    def replan_steps(self) -> int:
        """Chunk steps played before the next chunk is asked for (1 with ensembling)."""
        return 1 if self.temporal_ensemble_k is not None else self.execute_steps

    def replan_period_s(self, step_period_s: float) -> float:
        """Seconds between chunk requests for chunks spaced ``step_period_s`` apart."""
        return self.replan_steps * step_period_s / self.speed


class ChunkExecutor:
    """Turns a stream of ActionChunks into one target per control tick."""

    def __init__(self, config: ExecutionConfig) -> None:
        self.config = config
        self._chunks: deque[ActionChunk] = deque()
        self._replan_at_s: float | None = None

    def reset(self) -> None:
        self._chunks.clear()
        self._replan_at_s = None

    def needs_chunk(self, time_s: float) -> bool:
        """Whether the policy should be queried now."""
        return self._replan_at_s is None or time_s >= self._replan_at_s - 1e-9

    def add(self, chunk: ActionChunk, *, received_s: float | None = None) -> None:
        """Queue ``chunk``; ``received_s`` is when it arrived (used without compensation)."""
        if self.config.speed != 1.0:
            chunk = chunk.time_scaled(self.config.speed)
        if not self.config.latency_compensation and received_s is not None:
            chunk = chunk.shifted(received_s - chunk.start_s)
        dt = _step_period(chunk)
        self._replan_at_s = chunk.start_s + min(self.config.replan_steps, len(chunk)) * dt
        if self.config.temporal_ensemble_k is None:
            self._chunks.clear()
        self._chunks.append(chunk)

    @property
    def newest_start_s(self) -> float | None:
        """Observation time of the newest queued chunk (the one played without ensembling)."""
        return self._chunks[-1].start_s if self._chunks else None

    def target(self, time_s: float) -> CartesianTarget:
        """The command for ``time_s``; raises if no chunk was added yet."""
        if not self._chunks:
            raise RuntimeError("ChunkExecutor.target called before any chunk was added")
        while len(self._chunks) > 1 and self._chunks[0].end_s < time_s:
            self._chunks.popleft()  # expired: no longer covers the present
        if self.config.temporal_ensemble_k is None or len(self._chunks) == 1:
            return self._lookup(self._chunks[-1], time_s)
        targets = [self._lookup(c, time_s) for c in self._chunks if c.end_s >= time_s]
        if not targets:
            return self._lookup(self._chunks[-1], time_s)
        weights = np.exp(-self.config.temporal_ensemble_k * np.arange(len(targets)))
        weights /= weights.sum()
        position = sum(w * t.position for w, t in zip(weights, targets, strict=True))
        reference = targets[0].quaternion
        quats = [t.quaternion if t.quaternion @ reference >= 0 else -t.quaternion for t in targets]
        quaternion = sum(w * q for w, q in zip(weights, quats, strict=True))
        gripper = sum(w * float(t.gripper_closed) for w, t in zip(weights, targets, strict=True))
        return CartesianTarget(
            np.asarray(position),
            quaternion / np.linalg.norm(quaternion),
            gripper_closed=bool(gripper > 0.5),
            timestamp_s=time_s,
        )

    def _lookup(self, chunk: ActionChunk, time_s: float) -> CartesianTarget:
        if self.config.interpolate:
            return chunk.target_at(time_s)
        i = chunk.step_at(time_s)
        return CartesianTarget(
            chunk.positions[i],
            chunk.quaternions[i],
            gripper_closed=bool(chunk.gripper[i] > 0.5),
            timestamp_s=time_s,
        )


def _step_period(chunk: ActionChunk) -> float:
    if len(chunk) < 2:
        return 0.1
    return float(np.median(np.diff(chunk.times_s)))
