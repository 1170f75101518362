"""``rl human track`` over a stored human episode of rendered hands, and the errors of a bad
``--cameras`` spec and a missing store."""

from __future__ import annotations

import numpy as np

from data_collection.hand_tracking.base import PointState
from data_collection.human_capture import human_video_schema
from robot_learning.cli import main
from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.keys import (
    HANDS,
    TIMESTAMP,
    camera_key,
    camera_timestamp_key,
    hand_keypoints_key,
    hand_state_key,
)
from robot_learning.store import Source, StoreReader, StoreWriter
from tests.data_collection.rendered_hand import IMAGE_SIZE, HandPose, render_hands

RIGHT = HANDS.index("right")


def test_track_writes_hand_keys_into_human_episodes_only(tmp_path, capsys) -> None:
    h, w = IMAGE_SIZE
    intr = CameraIntrinsics(width=w, height=h, fx=580.0, fy=580.0, cx=w / 2, cy=h / 2)
    store = tmp_path / "h.zarr"
    truth = []
    with StoreWriter(
        store, human_video_schema({"front": intr}, depth=False, record_hz=10.0)
    ) as writer:
        for source in (Source.TELEOP, Source.HUMAN_VIDEO):
            writer.begin_episode(source=source, task="t")
            for i in range(5):
                image, kp = render_hands([HandPose("right", (-0.04 + 0.01 * i, 0.0), 0.1)])
                truth.append(kp["right"])
                writer.append(
                    {
                        TIMESTAMP: 10 + 0.1 * i,
                        camera_key("front"): image,
                        camera_timestamp_key("front"): 10 + 0.1 * i,
                    }
                )
            writer.commit(success=True)
    assert main(["human", "track", "--store", str(store)]) == 0
    assert "annotated 1 episodes" in capsys.readouterr().out
    reader = StoreReader(store)
    assert hand_keypoints_key("front") not in reader.episode(0).info.keys
    ep = reader.read_episode(1, [hand_keypoints_key("front"), hand_state_key("front")])
    assert np.all(ep[hand_state_key("front")][:, RIGHT] == PointState.DETECTED)
    assert np.all(ep[hand_state_key("front")][:, 1 - RIGHT] == PointState.MISSING)
    error = np.linalg.norm(ep[hand_keypoints_key("front")][:, RIGHT] - np.array(truth[5:]), axis=-1)
    assert error.mean() < 12.0
    # a second run skips what is tracked
    assert main(["human", "track", "--store", str(store)]) == 0
    assert "skipping 1 episodes already tracked" in capsys.readouterr().out


def test_bad_camera_spec_and_missing_store_are_named(
    tmp_path,
    capsys,
) -> None:
    assert (
        main(["human", "collect", "--store", str(tmp_path / "s.zarr"), "--cameras", "front=webcam"])
        == 2
    )
    assert "NAME=realsense[:SERIAL]" in capsys.readouterr().err
    assert main(["human", "track", "--store", str(tmp_path / "none.zarr")]) == 2
    assert "none.zarr" in capsys.readouterr().err


def test_detected_hands_become_motion_tracks(tmp_path, capsys) -> None:
    """The real-video path end to end: ``rl human track`` (MediaPipe) writes the hands, and
    ``rl tracks label`` turns them into the thumb tip / index tip / knuckle tracks, either
    from the stored keypoints or by running the registered detector itself."""
    from data_collection.hand_tracking.base import INDEX_MCP, INDEX_TIP, THUMB_TIP
    from data_collection.recorder import camera_calibration
    from robot_learning.keys import TRACK_GRASP, track_key, track_state_key

    h, w = IMAGE_SIZE
    intr = CameraIntrinsics(width=w, height=h, fx=580.0, fy=580.0, cx=w / 2, cy=h / 2)
    store = tmp_path / "h.zarr"
    with StoreWriter(
        store, human_video_schema({"front": intr}, depth=False, record_hz=10.0)
    ) as writer:
        writer.begin_episode(
            source=Source.HUMAN_VIDEO,
            task="t",
            calibration=camera_calibration({"front": intr}, {"front": np.eye(4)}),
        )
        for i in range(4):
            image, _ = render_hands([HandPose("right", (-0.03 + 0.02 * i, 0.0), 0.1)])
            writer.append(
                {
                    TIMESTAMP: 10 + 0.1 * i,
                    camera_key("front"): image,
                    camera_timestamp_key("front"): 10 + 0.1 * i,
                }
            )
        writer.commit(success=True)
    assert main(["human", "track", "--store", str(store)]) == 0
    assert main(["tracks", "label", "--store", str(store), "--tracker", "stored"]) == 0
    reader = StoreReader(store)
    keys = [track_key("front"), track_state_key("front"), hand_keypoints_key("front"), TRACK_GRASP]
    ep = reader.read_episode(0, keys)
    hands = ep[hand_keypoints_key("front")][:, RIGHT]
    np.testing.assert_allclose(
        ep[track_key("front")], hands[:, [THUMB_TIP, INDEX_TIP, INDEX_MCP]], atol=1e-4
    )
    assert np.all(ep[track_state_key("front")] == PointState.DETECTED)
    # the detector run by the labeller itself gives the same tracks
    assert (
        main(["tracks", "label", "--store", str(store), "--tracker", "mediapipe", "--overwrite"])
        == 0
    )
    again = StoreReader(store).read_episode(0, [track_key("front")])[track_key("front")]
    np.testing.assert_allclose(again, ep[track_key("front")], atol=2.0)
    capsys.readouterr()
    assert main(["tracks", "label", "--store", str(store), "--tracker", "hamer"]) == 2
    assert "hamer" in capsys.readouterr().err
