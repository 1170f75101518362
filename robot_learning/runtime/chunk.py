"""An action chunk: N Cartesian targets with absolute times, the output of every policy.

Glossary: N = chunk length; times are seconds on the station clock; the first target is
anchored at the observation time the chunk was predicted from. Positions in metres and
quaternions (x, y, z, w) in the robot base frame, gripper in [0, 1] (1 = closed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_learning.geometry import slerp_xyzw
from robot_learning.hardware.robot import CartesianTarget


@dataclass(frozen=True)
class ActionChunk:
    times_s: np.ndarray  # (N,) increasing, station clock
    positions: np.ndarray  # (N, 3) m, base frame
    quaternions: np.ndarray  # (N, 4) x, y, z, w, base frame
    gripper: np.ndarray  # (N,) 0 open .. 1 closed

    def __post_init__(self) -> None:
        n = len(self.times_s)
        shapes = {
            "times_s": (np.shape(self.times_s), (n,)),
            "positions": (np.shape(self.positions), (n, 3)),
            "quaternions": (np.shape(self.quaternions), (n, 4)),
            "gripper": (np.shape(self.gripper), (n,)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"ActionChunk.{name} has shape {got}, expected {want}")
        if n == 0:
            raise ValueError("ActionChunk is empty")
        if n > 1 and not np.all(np.diff(self.times_s) > 0):
            raise ValueError("ActionChunk.times_s must increase strictly")
        for name in ("times_s", "positions", "quaternions", "gripper"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"ActionChunk.{name} holds non-finite values")

    def __len__(self) -> int:
        return len(self.times_s)

    @property
    def start_s(self) -> float:
        return float(self.times_s[0])

    @property
    def end_s(self) -> float:
        return float(self.times_s[-1])

    def step_at(self, time_s: float) -> int:
        """Index of the last step at or before ``time_s`` (the first before the chunk)."""
        index = np.searchsorted(self.times_s, time_s + 1e-9, side="right") - 1
        return int(np.clip(index, 0, len(self.times_s) - 1))

    def target_at(self, time_s: float) -> CartesianTarget:
        """The target at ``time_s``: linear in position, slerp in rotation between the two
        neighbouring steps, held at the ends. The gripper follows the nearer step at or
        before ``time_s`` (a gripper command is a switch, not a ramp)."""
        times = self.times_s
        i = self.step_at(time_s)
        if i == len(times) - 1 or time_s <= times[0]:
            j, frac = i, 0.0
        else:
            j = i + 1
            frac = float((time_s - times[i]) / (times[j] - times[i]))
        position = (1 - frac) * self.positions[i] + frac * self.positions[j]
        quaternion = slerp_xyzw(self.quaternions[i], self.quaternions[j], frac)
        return CartesianTarget(
            position, quaternion, gripper_closed=bool(self.gripper[i] > 0.5), timestamp_s=time_s
        )

    def shifted(self, offset_s: float) -> ActionChunk:
        """The same targets ``offset_s`` later (what ignoring inference latency amounts to)."""
        return ActionChunk(self.times_s + offset_s, self.positions, self.quaternions, self.gripper)

    def time_scaled(self, speed: float) -> ActionChunk:
        """The same targets reached ``speed`` times sooner after the chunk's start (its
        observation time): ``speed`` > 1 plays the chunk faster than it was predicted."""
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        times = self.start_s + (self.times_s - self.start_s) / speed
        return ActionChunk(times, self.positions, self.quaternions, self.gripper)

    def as_vectors(self) -> np.ndarray:
        """(N, 8) position, quaternion, gripper: the store's action layout."""
        return np.concatenate(
            [self.positions, self.quaternions, self.gripper[:, None]], axis=1
        ).astype(np.float64)

    @classmethod
    def from_vectors(cls, times_s: np.ndarray, actions: np.ndarray) -> ActionChunk:
        """From (N, 8) rows in the store's action layout."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != 8:
            raise ValueError(f"actions must be (N, 8) pos+quat+gripper, got {actions.shape}")
        quats = actions[:, 3:7] / np.linalg.norm(actions[:, 3:7], axis=1, keepdims=True)
        return cls(
            np.asarray(times_s, dtype=np.float64),
            actions[:, :3].copy(),
            quats,
            actions[:, 7].copy(),
        )
