"""Keypoint retargeting: a hand's track points given the gripper's structure.

The hand's points (thumb tip, index tip, index knuckle) and the gripper's (two fingertips, the
centre between the finger roots) share their order (``keys.TRACK_POINTS``), so a pinch and a
closing gripper move the same pair together; their shapes differ. A human hand opens wider
than the 8 cm gripper and its knuckle sits off to the side of the pinch, 6-9 cm from the tips
rather than 4.5 cm straight behind them. Trained on raw hand points, the policy would learn
tracks no gripper can follow, and the rigid fit at inference (which maps the gripper's
current points onto the predicted ones) would absorb the difference as a spurious rotation.

So, per step, in 3D (base frame):
  m = midpoint of the two tips (the grasp point, kept);
  d = unit vector from tip b to tip a (the closing direction, kept);
  the tips become m +- d * min(|a - b|, gripper max width) / 2;
  the base becomes m + n * gripper depth, n the unit component of (knuckle - m) orthogonal
  to d (the approach direction, as seen from the grasp point).
The result is exactly a gripper pose's keypoints (``track_geometry.gripper_keypoints``) at
the hand's grasp point, closing direction, approach and opening; it is then projected into
each calibrated view, giving the 2D tracks the policy trains on.
"""

from __future__ import annotations

import numpy as np

from robot_learning.track_geometry import GRIPPER_BASE_DEPTH_M, GRIPPER_MAX_WIDTH_M


def retarget_hand_points(points: np.ndarray) -> np.ndarray:
    """(..., 3, 3) hand track points (thumb tip, index tip, knuckle) -> the gripper-shaped
    points (finger_a, finger_b, base); NaN rows stay NaN. Raises when the knuckle lies on the
    line through the tips (no approach direction)."""
    points = np.asarray(points, dtype=np.float64)
    a, b, knuckle = points[..., 0, :], points[..., 1, :], points[..., 2, :]
    mid = 0.5 * (a + b)
    span = a - b
    width = np.linalg.norm(span, axis=-1, keepdims=True)
    d = span / np.maximum(width, 1e-9)
    approach = knuckle - mid
    approach = approach - (approach * d).sum(-1, keepdims=True) * d
    length = np.linalg.norm(approach, axis=-1, keepdims=True)
    finite = np.isfinite(points).all(axis=(-1, -2))
    if np.any(finite & (length[..., 0] < 1e-4)):
        raise ValueError(
            "hand points with the knuckle on the line through the finger tips: "
            "no approach direction to retarget to"
        )
    n = approach / np.maximum(length, 1e-9)
    half = 0.5 * np.minimum(width, GRIPPER_MAX_WIDTH_M)
    out = np.stack([mid + d * half, mid - d * half, mid + n * GRIPPER_BASE_DEPTH_M], axis=-2)
    out[~finite] = np.nan
    return out
