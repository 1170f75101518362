"""A tracker run over one episode's frames in one view: both hands, gaps filled and flagged.

Each frame's detections go to their hand's row (``HANDS`` order), so the left and right
hands never mix even when one is missing; then ``base.fill_gaps`` interpolates short gaps
(flagged ``INTERPOLATED``) and leaves long ones ``MISSING`` (NaN).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from data_collection.hand_tracking.base import (
    NUM_LANDMARKS,
    HandTracker,
    HandTrackSequence,
    PointState,
    fill_gaps,
)
from robot_learning.keys import HANDS

log = logging.getLogger(__name__)

DEFAULT_MAX_GAP_S = 0.5  # a hand unseen longer than this is left missing, not invented


def track_frames(
    frames: Iterable[np.ndarray],
    timestamps: np.ndarray,
    tracker: HandTracker,
    *,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
    progress: bool = True,
    desc: str = "hands",
) -> HandTrackSequence:
    """Run ``tracker`` over RGB ``frames`` (one per timestamp, station clock seconds)."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    n = len(timestamps)
    keypoints = np.full((n, len(HANDS), NUM_LANDMARKS, 2), np.nan, dtype=np.float32)
    state = np.full((n, len(HANDS)), PointState.MISSING, dtype=np.uint8)
    count = 0
    for row, frame in enumerate(
        tqdm(frames, total=n, desc=desc, unit="frame", disable=not progress, leave=False)
    ):
        if row >= n:
            raise ValueError(f"{desc}: more frames than the {n} timestamps given")
        for obs in tracker.detect(frame, float(timestamps[row])):
            hand = HANDS.index(obs.handedness)
            if state[row, hand] == PointState.DETECTED:
                raise ValueError(
                    f"{tracker.name} tracker returned two {obs.handedness} hands "
                    f"in frame {row}; a tracker returns at most one per side"
                )
            keypoints[row, hand] = obs.keypoints
            state[row, hand] = PointState.DETECTED
        count = row + 1
    if count != n:
        raise ValueError(f"{desc}: {count} frames for {n} timestamps")
    return fill_gaps(HandTrackSequence(keypoints, state), timestamps, max_gap_s)


@dataclass(frozen=True)
class TrackCoverage:
    """How much of an episode a hand was seen in, per hand (fractions of frames)."""

    detected: dict[str, float]
    interpolated: dict[str, float]
    missing: dict[str, float]

    @classmethod
    def of(cls, seq: HandTrackSequence) -> TrackCoverage:
        n = max(len(seq.state), 1)

        def share(which: PointState) -> dict[str, float]:
            return {h: float(np.sum(seq.state[:, i] == which)) / n for i, h in enumerate(HANDS)}

        return cls(
            share(PointState.DETECTED), share(PointState.INTERPOLATED), share(PointState.MISSING)
        )

    def __str__(self) -> str:
        return ", ".join(
            f"{h} {self.detected[h]:.0%} seen + {self.interpolated[h]:.0%} filled" for h in HANDS
        )
