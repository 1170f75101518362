"""Per-episode metadata: what was recorded (fixed at commit) and how it was curated (editable)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from robot_learning.store.schema import Source


@dataclass(frozen=True)
class EpisodeInfo:
    """Facts about one committed episode, written once at commit."""

    index: int
    source: Source
    task: str
    success: bool
    operator: str = ""
    start_time_s: float = 0.0  # seconds since the UNIX epoch (station clock)
    end_time_s: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)  # free-form, JSON-serializable
    calibration: dict[str, Any] = field(default_factory=dict)  # calibration used, if any
    keys: tuple[str, ...] = ()  # keys recorded in this episode (others hold fill values)
    lengths: dict[str, int] = field(default_factory=dict)  # rows per stream
    checksums: dict[str, str] = field(default_factory=dict)  # sha256 of lossless keys' rows

    def camera_poses(self, camera: str, ee_poses: np.ndarray) -> np.ndarray:
        """(T, 4, 4) T_base_camera of ``camera`` at each step, from the stored calibration:
        a camera on the hand follows the hand, ``T_base_hand(t) @ T_hand_camera``; a fixed
        one stays at ``T_base_camera``. ``ee_poses``: (T, 7) position + quaternion xyzw."""
        from robot_learning.geometry import transform_from_pose

        entry = self.calibration.get(camera)
        if entry is None:
            raise KeyError(
                f"episode {self.index}: no calibration for camera {camera!r} "
                f"(has {sorted(self.calibration)})"
            )
        ee_poses = np.asarray(ee_poses, dtype=np.float64).reshape(-1, 7)
        if entry.get("T_hand_camera") is not None:
            T_hand_camera = np.asarray(entry["T_hand_camera"], dtype=np.float64)
            return np.stack([transform_from_pose(p[:3], p[3:]) @ T_hand_camera for p in ee_poses])
        if entry.get("T_base_camera") is None:
            raise ValueError(f"episode {self.index}: camera {camera!r} was not calibrated")
        fixed = np.asarray(entry["T_base_camera"], dtype=np.float64)
        return np.repeat(fixed[None], len(ee_poses), axis=0)

    def to_json(self) -> str:
        data = asdict(self)
        data["source"] = str(self.source)
        data["keys"] = list(self.keys)
        return json.dumps(data, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> EpisodeInfo:
        data = json.loads(text)
        data["source"] = Source(data["source"])
        data["keys"] = tuple(data["keys"])
        return cls(**data)


@dataclass(frozen=True)
class Curation:
    """A reviewer's verdict on an episode; changing it rewrites one small metadata chunk."""

    excluded: bool = False
    reason: str = ""
    time_s: float = 0.0

    def to_json(self) -> str:
        if not self.excluded and not self.reason:
            return ""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Curation:
        return cls(**json.loads(text)) if text else cls()


@dataclass(frozen=True)
class Episode:
    """A committed episode as a reader sees it: facts, curation and its row range per stream."""

    info: EpisodeInfo
    curation: Curation
    rows: dict[str, tuple[int, int]]  # stream -> (start, stop)

    @property
    def index(self) -> int:
        return self.info.index

    @property
    def excluded(self) -> bool:
        return self.curation.excluded

    @property
    def length(self) -> int:
        """Rows in the main stream."""
        start, stop = self.rows["step"]
        return stop - start
