"""A simulated hand tracker: landmark ground truth projected into a view, plus tracker errors.

Simulated human videos know where every landmark is (``hand_landmarks_3d``); projecting it
with the episode's camera calibration gives what a perfect tracker would report. The error
model makes it behave like a real one, per view and per frame:

- **pixel noise**: Gaussian on each coordinate, sized relative to the hand's projected palm
  (wrist to middle-finger knuckle), so it scales with distance and resolution as detector
  errors do. Default: sigma = 0.08 palm per coordinate, i.e. a mean 2D error of about 10% of
  the palm: the published figure for MediaPipe's hand landmark model (MediaPipe Hands,
  Zhang et al. 2020, arXiv:2006.10214: mean squared error normalized by palm size, 10-12%
  for the full and lite models). Used until the capture engineer's measurement of our
  MediaPipe install on rendered hands replaces it.
- **dropouts**: bursts of frames with the hand not found (a two-state Markov chain: a burst
  starts with ``dropout_start_prob`` per frame and lasts ``dropout_mean_frames`` on
  average; defaults 0.03 and 2, about 6% of frames lost, a burst of a second or more rare
  (0.2% of bursts)). No published figure: a guess at fast motion and occlusion losses, to
  be measured. A hand less than half inside the image
  is never found.
- **swaps**: the hand reported with the wrong handedness (``swap_prob`` per frame, default
  0.01; MediaPipe's handedness classifier errs mostly on unusual views). A swapped frame
  puts the hand in the other hand's slot, as the real tracker would.

Gaps are then filled exactly as for a real tracker (``fill_gaps``), so the rest of the stack
sees the same ``HandTrackSequence`` either way. ``TrackerErrorModel.perfect()`` turns every
error off (ground-truth tracks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_collection.hand_tracking.base import (
    NUM_LANDMARKS,
    WRIST,
    HandTrackSequence,
    PointState,
    fill_gaps,
)
from data_collection.motion_tracks.cameras import EpisodeCamera
from robot_learning.keys import HANDS

MIDDLE_MCP = 9
DEFAULT_MAX_GAP_S = 0.5  # as the real trackers' sequences (hand_tracking.sequence)


@dataclass(frozen=True)
class TrackerErrorModel:
    """Sizes of the simulated tracker's errors (defaults and their sources: module doc)."""

    noise_palm_fraction: float = 0.08
    dropout_start_prob: float = 0.03
    dropout_mean_frames: float = 2.0
    swap_prob: float = 0.01
    min_visible_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "noise_palm_fraction",
            "dropout_start_prob",
            "swap_prob",
            "min_visible_fraction",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= (1.0 if name != "noise_palm_fraction" else 10.0):
                raise ValueError(f"TrackerErrorModel.{name} = {value} out of range")
        if self.dropout_mean_frames < 1.0:
            raise ValueError(f"dropout_mean_frames must be >= 1, got {self.dropout_mean_frames}")

    @classmethod
    def perfect(cls) -> TrackerErrorModel:
        return cls(noise_palm_fraction=0.0, dropout_start_prob=0.0, swap_prob=0.0)


def simulate_tracking(
    landmarks_3d: np.ndarray,
    camera: EpisodeCamera,
    timestamps: np.ndarray,
    *,
    errors: TrackerErrorModel | None = None,
    rng: np.random.Generator | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> HandTrackSequence:
    """Both hands over one episode in one view, as a tracker with ``errors`` would see them.

    ``landmarks_3d``: (T, len(HANDS), 21, 3) base frame, NaN for a hand not in the scene.
    """
    errors = errors or TrackerErrorModel()
    rng = rng or np.random.default_rng(0)
    landmarks_3d = np.asarray(landmarks_3d, dtype=np.float64)
    t = len(landmarks_3d)
    if landmarks_3d.shape[1:] != (len(HANDS), NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks_3d shape {landmarks_3d.shape}: expected (T, 2, 21, 3)")
    keypoints = np.full((t, len(HANDS), NUM_LANDMARKS, 2), np.nan, np.float32)
    state = np.zeros((t, len(HANDS)), np.uint8)
    for hand in range(len(HANDS)):
        points = landmarks_3d[:, hand]
        present = np.isfinite(points).all(axis=(1, 2))
        pixels, depth = camera.project(np.nan_to_num(points))
        visible = camera.inside(pixels, depth).mean(axis=1) >= errors.min_visible_fraction
        found = present & visible & ~_dropouts(t, errors, rng)
        palm = np.linalg.norm(pixels[:, MIDDLE_MCP] - pixels[:, WRIST], axis=1)
        noisy = (
            pixels
            + rng.normal(size=pixels.shape) * (errors.noise_palm_fraction * palm)[:, None, None]
        )
        swapped = rng.random(t) < errors.swap_prob
        for row in np.flatnonzero(found):
            slot = 1 - hand if swapped[row] else hand
            if state[row, slot] == PointState.DETECTED:
                continue  # the other hand holds that slot this frame: one per handedness
            keypoints[row, slot] = noisy[row]
            state[row, slot] = PointState.DETECTED
    return fill_gaps(HandTrackSequence(keypoints, state), timestamps, max_gap_s)


def _dropouts(t: int, errors: TrackerErrorModel, rng: np.random.Generator) -> np.ndarray:
    lost = np.zeros(t, bool)
    end_prob = 1.0 / errors.dropout_mean_frames
    in_burst = False
    draws = rng.random((t, 2))
    for row in range(t):
        in_burst = (
            draws[row, 1] >= end_prob if in_burst else draws[row, 0] < (errors.dropout_start_prob)
        )
        lost[row] = in_burst
    return lost
