"""Human motion tracks: thumb tip, index tip and index knuckle of one hand, and a grasp flag.

The grasp heuristic (no gripper to read): the pinch ratio, thumb-tip-to-index-tip distance
divided by the palm size (wrist to middle-finger knuckle), taken in 3D when the landmarks'
3D positions are known (simulator ground truth, or triangulated), else per view in pixels
(the median over views, which tempers foreshortening). The hand grasps once the ratio
drops below ``GRASP_CLOSE_RATIO`` and lets go once it rises above ``GRASP_OPEN_RATIO``
(hysteresis, so tracker noise does not flicker it); frames without the hand keep the last
verdict. A fingertip pinch around a 5 cm cube gives about 0.55, an open approaching hand
0.9 to 1.2 (the stand-in: 0.98 open, 0.55 on the cube, 0.15 pinched shut).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_collection.hand_tracking.base import (
    INDEX_MCP,
    INDEX_TIP,
    THUMB_TIP,
    WRIST,
    HandTrackSequence,
    PointState,
)
from robot_learning.keys import HANDS

TRACK_LANDMARKS = (THUMB_TIP, INDEX_TIP, INDEX_MCP)  # keys.TRACK_POINTS order
MIDDLE_MCP = 9
GRASP_CLOSE_RATIO = 0.75
GRASP_OPEN_RATIO = 0.85


def hand_index(hand: str) -> int:
    if hand not in HANDS:
        raise ValueError(f"hand {hand!r}: expected one of {HANDS}")
    return HANDS.index(hand)


def hand_track(seq: HandTrackSequence, hand: str) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3, 2) track pixels and (T, 3) PointState of ``hand`` in one view. Where the hand
    is MISSING the last seen position is held (the first seen, before it appears); an
    episode that never sees it is NaN throughout."""
    h = hand_index(hand)
    points = seq.keypoints[:, h][:, list(TRACK_LANDMARKS)].astype(np.float32)
    state = np.repeat(seq.state[:, h : h + 1], len(TRACK_LANDMARKS), axis=1).astype(np.uint8)
    seen = np.flatnonzero(seq.state[:, h] != PointState.MISSING)
    if len(seen):
        index = np.maximum.accumulate(
            np.where(seq.state[:, h] != PointState.MISSING, np.arange(len(points)), -1)
        )
        index[index < 0] = seen[0]
        points = points[index]
    return points, state


def pinch_ratio_3d(landmarks: np.ndarray) -> np.ndarray:
    """(T, 21, 3) -> (T,) thumb-index distance over palm size."""
    pinch = np.linalg.norm(landmarks[:, THUMB_TIP] - landmarks[:, INDEX_TIP], axis=-1)
    palm = np.linalg.norm(landmarks[:, MIDDLE_MCP] - landmarks[:, WRIST], axis=-1)
    return pinch / np.maximum(palm, 1e-9)


def pinch_ratio_2d(views: Sequence[HandTrackSequence], hand: str) -> np.ndarray:
    """(T,) median over views of the pixel pinch ratio; NaN where no view sees the hand."""
    h = hand_index(hand)
    ratios = []
    for seq in views:
        ratio = pinch_ratio_3d(seq.keypoints[:, h].astype(np.float64))
        ratio[seq.state[:, h] == PointState.MISSING] = np.nan
        ratios.append(ratio)
    stacked = np.stack(ratios)
    out = np.full(stacked.shape[1], np.nan)
    some = np.isfinite(stacked).any(axis=0)
    out[some] = np.nanmedian(stacked[:, some], axis=0)
    return out


def grasp_from_ratio(ratio: np.ndarray) -> np.ndarray:
    """(T,) 1.0 while grasping, by the hysteresis above; NaN frames keep the verdict."""
    grasp = np.zeros(len(ratio), np.float32)
    holding = False
    for row, value in enumerate(ratio):
        if np.isfinite(value):
            holding = value < GRASP_OPEN_RATIO if holding else value < GRASP_CLOSE_RATIO
        grasp[row] = holding
    return grasp


def missing_stretches(state: np.ndarray, timestamps: np.ndarray) -> tuple[float, float]:
    """(fraction of frames MISSING, longest MISSING stretch in seconds) of one hand's states."""
    missing = np.asarray(state) == PointState.MISSING
    if not missing.any():
        return 0.0, 0.0
    longest, start = 0.0, None
    period = float(np.median(np.diff(timestamps))) if len(timestamps) > 1 else 0.0
    for row, gone in enumerate([*missing, False]):
        if gone and start is None:
            start = row
        elif not gone and start is not None:
            longest = max(longest, float(timestamps[row - 1] - timestamps[start]) + period)
            start = None
    return float(missing.mean()), longest
