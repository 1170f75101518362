"""What a policy is given: the latest sample of each key, each with its capture time.

Keys are the store's keys (``camera_front``, ``robot_ee_pose``, ``robot_gripper_width``...),
so a policy trained on a store reads observations by the same names at deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from robot_learning.runtime.chunk import ActionChunk


@dataclass(frozen=True)
class Observation:
    """``values[key]`` as stored (uint8 HxWx3 images, float low-dim), ``timestamps_s[key]``
    its capture time on the station clock; ``time_s`` is when the observation was taken
    (the anchor of the chunk predicted from it)."""

    time_s: float
    values: Mapping[str, np.ndarray]
    timestamps_s: Mapping[str, float] = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self.values[key]
        except KeyError:
            raise KeyError(f"observation has no {key!r} (has: {', '.join(self.values)})") from None

    def stamp(self, key: str) -> float:
        return float(self.timestamps_s.get(key, self.time_s))


class PolicyLike(Protocol):
    """The policy contract the runtime relies on (ACT, Diffusion, MT-pi all keep it)."""

    def reset(self) -> None: ...

    def act(self, observation: Observation) -> ActionChunk: ...

    def observe(self, observation: Observation) -> None:
        """Observations between queries, every ``observation_period_s`` (None: never)."""
