"""MT-pi on a real (small) store with tracks: data, retargeting, learning, checkpoints,
rl train / rl eval end to end, and the bad inputs it must refuse clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from policies.data import DataSelection, StepBatches
from policies.motion_tracks.data import (
    TrackDataError,
    TrackTrainingData,
    from_model_coords,
    to_model_coords,
)
from policies.motion_tracks.network import TrackNetwork
from policies.motion_tracks.policy import MotionTrackPolicy
from policies.motion_tracks.retarget import retarget_hand_points
from policies.policy import load_policy
from robot_learning.geometry import make_transform, mat_from_rotvec
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH, TIMESTAMP, camera_key
from robot_learning.runtime import ActionChunk, Observation
from robot_learning.store import StoreReader
from robot_learning.track_geometry import TrackGeometryError, gripper_keypoints
from tests.policies.conftest import tiny_config, tiny_overrides, train_tiny
from tests.policies.mtpi_store import CAMERAS, hand_points, record_track_store
from tests.rl_cli import run_rl


@pytest.fixture(scope="module")
def track_store(tmp_path_factory) -> Path:
    """3 scripted lift demos (seeds 0-2) + 2 human stand-in episodes, front + side, 48x64."""
    return record_track_store(
        tmp_path_factory.mktemp("mtpi") / "tracks.zarr",
        episodes=3,
        human_episodes=2,
        image_size=(48, 64),
    )


def load_data(store: Path, **changes) -> TrackTrainingData:
    return TrackTrainingData.from_store(
        str(store),
        tiny_config("mtpi", **changes),
        DataSelection(val_fraction=0.0),
        cache_images=True,
        progress=False,
    )


def train_tiny_mtpi(store: Path, out: Path, steps: int) -> object:
    return train_tiny(store, out, "mtpi", steps, cache_images=True, val_every=steps, every=steps)


def observation(store: Path, episode: int, step: int) -> Observation:
    data = StoreReader(store).read_episode(episode)
    values = {k: data[k][step] for k in (EE_POSE, GRIPPER_WIDTH)}
    for cam in CAMERAS:
        values[camera_key(cam)] = data[camera_key(cam)][step]
    return Observation(time_s=float(data[TIMESTAMP][step]), values=values)


def test_retargeting_gives_a_gripper_pose_keypoints():
    T = make_transform(mat_from_rotvec([np.pi, 0.0, 0.3]), [0.5, 0.1, 0.2])
    gripper = gripper_keypoints(T, 0.05)
    mid, closing = (gripper[0] + gripper[1]) / 2, gripper[0] - gripper[1]
    hand = gripper.copy()  # knuckle further back, and offset along the closing line
    hand[2] += 0.5 * (gripper[2] - mid) + 0.3 * closing
    np.testing.assert_allclose(retarget_hand_points(hand), gripper, atol=1e-9)
    # a knuckle off to the side: still exactly the gripper's shape (tilted about the tips)
    out = retarget_hand_points(hand_points(gripper))
    assert np.linalg.norm(out[0] - out[1]) == pytest.approx(0.05)
    assert np.linalg.norm(out[2] - mid) == pytest.approx(np.linalg.norm(gripper[2] - mid))
    assert np.dot(out[2] - mid, closing) == pytest.approx(0.0, abs=1e-12)
    wide = hand.copy()
    wide[0] += 1.1 * (gripper[0] - gripper[1])  # a hand opened to 10.5 cm: clamped to 8
    out = retarget_hand_points(wide)
    assert np.linalg.norm(out[0] - out[1]) == pytest.approx(0.08)
    with pytest.raises(ValueError, match="knuckle on the line"):
        retarget_hand_points(np.array([[0, 0.02, 0], [0, -0.02, 0], [0, 0.05, 0]]))


def test_samples_per_view_with_human_and_robot_balanced(track_store):
    data = load_data(track_store)
    reader = StoreReader(track_store)
    steps = sum(reader.episode(e).info.lengths["step"] for e in range(5))
    assert len(data.train) == 2 * steps  # every step, in each of the two views
    assert 0.2 < data.train.is_human.mean() < 0.5
    sampler = StepBatches(len(data.train), 32, seed=0, steps=40, weights=data.weights)
    drawn = np.concatenate([data.train.is_human[sampler.indices(s)] for s in range(40)])
    assert abs(drawn.mean() - 0.5) < 0.06  # MT-pi's 1:1 human:robot batches
    # a human sample trains on its retargeted tracks, not the raw hand points
    human = int(np.flatnonzero(data.train.is_human)[0])
    batch = data.train.get_batch([human])
    slot, step, view = data.train.samples[human]
    episode = data.train.episodes_data[slot]
    points = reader.read_episode(episode.index, keys=["track_points_3d"])["track_points_3d"]
    from tests.policies.mtpi_store import CAMERAS as names

    cam = reader.episode(episode.index).info.calibration[names[view]]
    from robot_learning.track_geometry import CameraView

    expected = CameraView.from_episode(names[view], cam, where="test").project(
        retarget_hand_points(points[step])
    )
    np.testing.assert_allclose(batch["current"][0].numpy(), expected, atol=1e-3)
    assert batch["image"].shape == (1, 3, 48, 64) and batch["image"].dtype == torch.uint8


def test_model_coordinates_move_with_the_crop():
    config = tiny_config("mtpi")
    pixels = torch.tensor([[[10.0, 20.0], [40.0, 5.0], [63.0, 47.0]]])
    centre = to_model_coords(pixels, (48, 64), config, None)
    np.testing.assert_allclose(from_model_coords(centre, (48, 64), config), pixels, atol=1e-5)
    shifted = to_model_coords(pixels, (48, 64), config, torch.tensor([[0.0, 4.0]]))
    # the window (left 0, top 4) sits 3 px left of and 2 px below the centre crop (3, 2):
    # in it, every point lies 3 px further right and 2 px higher
    np.testing.assert_allclose((shifted - centre)[..., 0] * (58 - 1) / 2, 3.0, atol=1e-5)
    np.testing.assert_allclose((shifted - centre)[..., 1] * (44 - 1) / 2, -2.0, atol=1e-5)


def test_overfits_one_batch(track_store):
    data = load_data(track_store)
    torch.manual_seed(0)
    network = TrackNetwork(
        tiny_config("mtpi"), data.features, data.statistics(tiny_config("mtpi"))
    ).train()
    batch = data.train.get_batch(np.random.default_rng(0).choice(len(data.train), 8).tolist())

    def loss_now() -> torch.Tensor:
        torch.manual_seed(1)  # the same noise, diffusion steps and crops every time
        return network(batch, generator=torch.Generator().manual_seed(1))[0]

    with torch.no_grad():
        before = float(loss_now())
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    for _ in range(40):  # 5x lower by ~40 steps
        loss = loss_now()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(loss_now())
    assert after < before / 4, (before, after)


def test_averaging_draws_narrows_the_predicted_tracks(track_store):
    """num_samples > 1 denoises that many draws and averages them: the same observation's
    predictions scatter less (an untrained model: its draws are nearly independent)."""
    data = load_data(track_store)
    obs = observation(track_store, 0, 10)
    images = torch.stack([torch.from_numpy(obs[camera_key(c)]).permute(2, 0, 1) for c in CAMERAS])
    points = gripper_keypoints(obs[EE_POSE], float(obs[GRIPPER_WIDTH]))
    current = torch.from_numpy(
        np.stack([v.project(points) for v in data.features.views().values()])
    )
    spread = {}
    for samples in (1, 8):
        config = tiny_config("mtpi", num_samples=samples)
        torch.manual_seed(0)  # the same weights for both
        network = TrackNetwork(config, data.features, data.statistics(config)).eval()
        draws = []
        for seed in range(6):
            torch.manual_seed(100 + seed)
            draws.append(network.predict_tracks(images, current)[0])
        spread[samples] = float(torch.stack(draws).std(0).mean())
    assert spread[8] < 0.6 * spread[1], spread


def test_checkpoint_round_trip_and_the_chunk_it_acts_with(track_store, tmp_path):
    result = train_tiny_mtpi(track_store, tmp_path / "run", steps=3)
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    features = json.loads((result.checkpoint / "features.json").read_text())
    assert sorted(features["calibration"]) == ["camera_front", "camera_side"]
    obs = observation(track_store, 0, 10)
    outputs = []
    for _ in range(2):
        policy = load_policy(tmp_path / "run")
        assert isinstance(policy, MotionTrackPolicy)
        images = torch.stack(
            [torch.from_numpy(obs[camera_key(c)]).permute(2, 0, 1) for c in CAMERAS]
        )
        current = torch.from_numpy(
            np.stack(
                [
                    v.project(gripper_keypoints(obs[EE_POSE], float(obs[GRIPPER_WIDTH])))
                    for v in policy.features.views().values()
                ]
            )
        )
        torch.manual_seed(0)
        outputs.append(policy.network.predict_tracks(images, current))
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    tracks, grasp, terminal = outputs[0]
    assert tracks.shape == (2, 16, 3, 2) and grasp.shape == terminal.shape == (2, 16)
    policy.change_inference(num_samples=3)  # the network and its model both draw three
    assert policy.network.config.num_samples == policy.network.model.config.num_samples == 3
    chunk = policy.act(obs)  # an untrained model's views disagree: it holds still, says so
    assert isinstance(chunk, ActionChunk) and chunk.times_s[0] == obs.time_s
    assert policy.rejected_chunks == 1
    np.testing.assert_allclose(chunk.positions, np.repeat(obs[EE_POSE][None, :3], len(chunk), 0))


def test_rl_train_and_rl_eval_end_to_end(track_store, tmp_path):
    run = run_rl(
        *("train", "--policy", "mtpi", "--preset", "sim", "--store", str(track_store)),
        *("--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "8", "--workers", "0"),
        *("--cache-images", "--val-fraction", "0.25", *tiny_overrides("mtpi")),
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = run_rl(
        *("eval", "--checkpoint", str(tmp_path / "run"), "--task", "lift", "--episodes", "1"),
        *("--max-duration", "2", "--json", "--samples", "2"),  # the mean of two draws
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["episodes"] == 1 and report["seeds"] == [100000]
    assert report["inference"] == {"num_inference_steps": 4, "num_samples": 2}
    assert 0 < report["episode_length_s"][0] <= 2.0 + 1e-6 and report["latency_ms_p50"] > 0


def test_stores_without_tracks_or_calibration_or_a_second_view_are_refused(track_store, tmp_path):
    bare = record_track_store(tmp_path / "bare.zarr", episodes=1, image_size=(48, 64), tracks=False)
    with pytest.raises(TrackDataError, match=r"no motion tracks.*rl tracks label"):
        load_data(bare)
    blind = record_track_store(
        tmp_path / "blind.zarr", episodes=1, image_size=(48, 64), calibrated=False
    )
    with pytest.raises(TrackDataError, match=r"camera 'front' is uncalibrated"):
        load_data(blind)
    with pytest.raises(TrackDataError, match=r"two views.*\['camera_front'\]"):
        load_data(track_store, cameras=("camera_front",))
    with pytest.raises(TrackDataError, match=r"camera\(s\) \['camera_wrist'\] have no tracks"):
        load_data(track_store, cameras=("camera_front", "camera_wrist"))


def test_inference_refuses_a_missing_view_and_moved_cameras(track_store, tmp_path):
    train_tiny_mtpi(track_store, tmp_path / "run", steps=1)
    policy = MotionTrackPolicy.load(tmp_path / "run")
    obs = observation(track_store, 0, 3)
    one_view = Observation(
        time_s=obs.time_s, values={k: v for k, v in obs.values.items() if k != camera_key("side")}
    )
    with pytest.raises(ValueError, match=r"no view 'camera_side'.*every view"):
        policy.act(one_view)
    views = {
        camera_key(n): v for n, v in zip(CAMERAS, policy.features.views().values(), strict=True)
    }
    station = {n: views[camera_key(n)] for n in CAMERAS}
    moved = dict(station)
    from robot_learning.track_geometry import CameraView

    side = station["side"]
    moved["side"] = CameraView(
        "side",
        side.intrinsics,
        make_transform(side.T_base_camera[:3, :3], side.T_base_camera[:3, 3] + [0.0, 0.0, 0.12]),
    )
    policy.use_cameras(moved)
    with pytest.raises(TrackGeometryError, match=r"view 'side' is 12.0 cm and 0.0 deg"):
        policy.act(obs)
    policy.use_cameras({"front": station["front"]})
    with pytest.raises(TrackGeometryError, match=r"view 'side' is not calibrated"):
        policy.act(obs)
