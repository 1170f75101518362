"""The hand-tracker interface and what it produces.

A tracker sees one RGB frame at a time and returns the hands it found; sequences over an
episode (gaps filled and flagged, left and right kept apart) are built on top of it, so any
detector (MediaPipe here, HaMeR on a GPU box) plugs in by implementing ``HandTracker``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from robot_learning.keys import HANDS

NUM_LANDMARKS = 21  # MediaPipe's hand model: 0 wrist, 1-4 thumb, 5-8 index, ... 17-20 pinky
WRIST = 0
THUMB_TIP = 4
INDEX_MCP = 5  # the index knuckle
INDEX_TIP = 8


class PointState(enum.IntEnum):
    """Why a stored keypoint has the value it has."""

    MISSING = 0  # never seen in this episode: the value is NaN (or held, for tracks)
    DETECTED = 1  # seen in this frame
    INTERPOLATED = 2  # filled between detections (or held at an end of the episode)


@dataclass(frozen=True)
class HandObservation:
    """One hand found in one frame."""

    handedness: str  # "right" or "left" (the person's hand, not the image side)
    keypoints: np.ndarray  # (NUM_LANDMARKS, 2) float32 pixels (u right, v down)
    score: float  # detector confidence in [0, 1]

    def __post_init__(self) -> None:
        if self.handedness not in HANDS:
            raise ValueError(f"handedness {self.handedness!r}: expected one of {HANDS}")
        if np.shape(self.keypoints) != (NUM_LANDMARKS, 2):
            raise ValueError(
                f"keypoints shape {np.shape(self.keypoints)}: expected ({NUM_LANDMARKS}, 2)"
            )


class HandTracker(ABC):
    """A per-frame hand detector. Implementations hold their model; ``close`` frees it."""

    name: str = ""

    @abstractmethod
    def detect(self, image: np.ndarray, timestamp_s: float) -> list[HandObservation]:
        """Hands in one RGB uint8 (H, W, 3) frame; at most one per handedness."""

    def close(self) -> None:  # noqa: B027  (optional for trackers that hold nothing)
        """Free the model."""


@dataclass
class HandTrackSequence:
    """Both hands over one episode in one camera view: what ``hand_keypoints_<cam>`` and
    ``hand_state_<cam>`` store, row by row."""

    keypoints: np.ndarray  # (T, len(HANDS), NUM_LANDMARKS, 2) float32, NaN where MISSING
    state: np.ndarray  # (T, len(HANDS)) uint8 PointState

    def __post_init__(self) -> None:
        t = len(self.keypoints)
        if self.keypoints.shape[1:] != (len(HANDS), NUM_LANDMARKS, 2):
            raise ValueError(f"keypoints shape {self.keypoints.shape}: expected (T, 2, 21, 2)")
        if self.state.shape != (t, len(HANDS)):
            raise ValueError(f"state shape {self.state.shape}: expected ({t}, {len(HANDS)})")


def fill_gaps(
    seq: HandTrackSequence, timestamps: np.ndarray, max_gap_s: float
) -> HandTrackSequence:
    """Interpolate each hand linearly in time across gaps no longer than ``max_gap_s``
    between two detections; longer gaps and the stretches before the first or after the last
    detection stay MISSING (NaN), for the episode check to flag rather than invent."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) != len(seq.keypoints):
        raise ValueError(f"{len(timestamps)} timestamps for {len(seq.keypoints)} frames")
    keypoints = seq.keypoints.copy()
    state = seq.state.copy()
    for hand in range(len(HANDS)):
        seen = np.flatnonzero(seq.state[:, hand] == PointState.DETECTED)
        for before, after in zip(seen[:-1], seen[1:], strict=True):
            if after - before < 2 or timestamps[after] - timestamps[before] > max_gap_s:
                continue
            span = timestamps[after] - timestamps[before]
            for row in range(before + 1, after):
                w = (timestamps[row] - timestamps[before]) / span if span > 0 else 0.0
                keypoints[row, hand] = (1 - w) * seq.keypoints[before, hand] + w * seq.keypoints[
                    after, hand
                ]
                state[row, hand] = PointState.INTERPOLATED
    return HandTrackSequence(keypoints=keypoints.astype(np.float32), state=state)
