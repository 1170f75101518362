"""MT-pi's training data: per-view samples of (image, current keypoints) -> future tracks,
grasp and terminal, from robot and human_video episodes of one store.

Every (step, view) pair is a sample, as in MT-pi: one network, shared by the views, learns
where the track points go in the image it sees. Robot episodes contribute their stored tracks
(``keys.track_<cam>``, from forward kinematics); human_video episodes have no robot actions
and train on tracks only, retargeted onto the gripper's structure (``retarget``) from their
3D points and the episode's calibration. Human and robot samples are drawn with a fixed share
of each batch (``MotionTrackConfig.human_fraction``) through the trainer's sample weights.

The checkpoint carries the calibration the training views were recorded with (the median
camera pose over the training episodes); inference checks the station's against it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from data_collection.hand_tracking.base import PointState
from policies.data import ROBOT_SOURCES, DataSelection, build_cache
from policies.features import PolicyFeatures
from policies.motion_tracks.config import MotionTrackConfig
from policies.motion_tracks.retarget import retarget_hand_points
from policies.normalization import FeatureStats, NormalizationStats
from robot_learning.geometry import make_transform
from robot_learning.keys import (
    CAMERA_PREFIX,
    TRACK_GRASP,
    TRACK_POINTS,
    TRACK_POINTS_3D,
    TRACK_TERMINAL,
    camera_name,
    track_key,
    track_state_key,
)
from robot_learning.store import MAIN_STREAM, Source, StoreReader
from robot_learning.store.normalization import stats_for
from robot_learning.store.sample_windows import split_episodes
from robot_learning.track_geometry import CameraView, TrackGeometryError

log = logging.getLogger(__name__)
NUM_POINTS = len(TRACK_POINTS)
ACTION_FEATURES = 2 * NUM_POINTS + 2  # per step: point deltas (u, v), grasp, terminal


class TrackDataError(ValueError):
    """A store that cannot train MT-pi (no tracks, a view missing, uncalibrated cameras)."""


@dataclass(frozen=True)
class TrackFeatures(PolicyFeatures):
    """PolicyFeatures plus the calibration of each view at training time (JSON of
    ``track_geometry.CameraView``), so inference can check the station's cameras."""

    calibration: dict[str, dict] = field(default_factory=dict)

    def views(self) -> dict[str, CameraView]:
        return {key: CameraView.from_json(entry) for key, entry in self.calibration.items()}

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "calibration": self.calibration}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrackFeatures:
        base = PolicyFeatures.from_json(data)
        return cls(**{**base.__dict__, "calibration": dict(data.get("calibration", {}))})


# -- pixels <-> model coordinates --------------------------------------------------------------
def to_model_coords(
    pixels: torch.Tensor,
    stored_hw: tuple[int, int],
    config: MotionTrackConfig,
    offsets: torch.Tensor | None,
) -> torch.Tensor:
    """(B, ..., 2) stored-image pixels -> [-1, 1] coordinates of the model's (resized, cropped)
    image; ``offsets`` (B, 2) the crop's (left, top) in resized pixels (None: centre crop)."""
    h, w = config.image_size
    ch, cw = config.model_image_size
    scale = torch.tensor(
        [w / stored_hw[1], h / stored_hw[0]], dtype=pixels.dtype, device=pixels.device
    )
    if offsets is None:
        offsets = torch.tensor(
            [(w - cw) // 2, (h - ch) // 2], dtype=pixels.dtype, device=pixels.device
        ).expand(pixels.shape[0], 2)
    shape = (pixels.shape[0],) + (1,) * (pixels.dim() - 2) + (2,)
    size = torch.tensor([cw - 1, ch - 1], dtype=pixels.dtype, device=pixels.device)
    return 2.0 * ((pixels + 0.5) * scale - 0.5 - offsets.reshape(shape)) / size - 1.0


def from_model_coords(
    coords: torch.Tensor, stored_hw: tuple[int, int], config: MotionTrackConfig
) -> torch.Tensor:
    """Inverse of ``to_model_coords`` for the centre crop (inference)."""
    h, w = config.image_size
    ch, cw = config.model_image_size
    size = torch.tensor([cw - 1, ch - 1], dtype=coords.dtype, device=coords.device)
    offsets = torch.tensor([(w - cw) // 2, (h - ch) // 2], dtype=coords.dtype, device=coords.device)
    scale = torch.tensor(
        [w / stored_hw[1], h / stored_hw[0]], dtype=coords.dtype, device=coords.device
    )
    return ((coords + 1.0) / 2.0 * size + offsets + 0.5) / scale - 0.5


# -- episodes --------------------------------------------------------------------------------
@dataclass
class _Episode:
    index: int
    human: bool
    rows: tuple[int, int]  # main-stream rows in the store
    tracks: np.ndarray  # (T, K, P, 2) pixels per view
    state: np.ndarray  # (T, K, P) PointState
    grasp: np.ndarray  # (T,)
    terminal: np.ndarray  # (T,)


def episode_views(
    reader: StoreReader, episode: int, cameras: Sequence[str]
) -> dict[str, CameraView]:
    info = reader.episode(episode).info
    where = f"{reader.path}: episode {episode} ({info.source})"
    return {
        cam: CameraView.from_episode(
            camera_name(cam), info.calibration.get(camera_name(cam)), where=where
        )
        for cam in cameras
    }


def _load_episode(reader: StoreReader, episode: int, cameras: Sequence[str]) -> _Episode:
    info = reader.episode(episode).info
    human = info.source == Source.HUMAN_VIDEO
    names = [camera_name(c) for c in cameras]
    needed = [
        TRACK_GRASP,
        TRACK_TERMINAL,
        *(track_key(n) for n in names),
        *(track_state_key(n) for n in names),
    ] + ([TRACK_POINTS_3D] if human else [])
    lacking = [k for k in needed if k not in info.keys]
    if lacking:
        raise TrackDataError(
            f"{reader.path}: episode {episode} ({info.source}) has no {lacking}; label the "
            "store's tracks first (`rl tracks label --store PATH`)"
        )
    data = reader.read_episode(episode, keys=needed)
    state = np.stack([data[track_state_key(n)] for n in names], axis=1).astype(np.uint8)
    if human:  # retarget onto the gripper's structure, then into each view
        retargeted = retarget_hand_points(data[TRACK_POINTS_3D])
        views = episode_views(reader, episode, cameras)
        tracks = np.stack(
            [
                views[c].project(retargeted.reshape(-1, 3)).reshape(-1, NUM_POINTS, 2)
                for c in cameras
            ],
            axis=1,
        )
        # a point is only as good as the three it was built from
        seen = (state != PointState.MISSING).all(axis=2, keepdims=True)
        state = np.where(seen & np.isfinite(tracks).all(-1), state, PointState.MISSING)
    else:
        tracks = np.stack([data[track_key(n)] for n in names], axis=1).astype(np.float64)
    return _Episode(
        episode,
        human,
        reader.episode(episode).rows[MAIN_STREAM],
        tracks,
        state.astype(np.uint8),
        data[TRACK_GRASP].astype(np.float32),
        data[TRACK_TERMINAL].astype(np.float32),
    )


class TrackDataset:
    """Samples (anchor step, view) over episodes; ``get_batch`` stacks them."""

    def __init__(
        self,
        path: str,
        episodes: list[_Episode],
        cameras: Sequence[str],
        image_shapes: Sequence[tuple[int, ...]],
        horizon: int,
        cache: dict[str, torch.Tensor] | None,
        cache_row: np.ndarray | None,
    ) -> None:
        self.path, self.episodes_data, self.cameras = path, episodes, tuple(cameras)
        self.episodes = [e.index for e in episodes]
        self.image_shapes = [tuple(s) for s in image_shapes]
        self.horizon = horizon
        self._cache, self._cache_row = cache, cache_row
        self._reader: StoreReader | None = None
        samples = []  # (episode slot, step, view)
        for slot, ep in enumerate(episodes):
            current_ok = (ep.state != PointState.MISSING).all(axis=2)  # (T, K)
            for step, view in zip(*np.nonzero(current_ok), strict=True):
                samples.append((slot, step, view))
        self.samples = np.asarray(samples, dtype=np.int64).reshape(-1, 3)
        self.is_human = np.array([episodes[s].human for s in self.samples[:, 0]], dtype=bool)

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}

    def get_batch(self, indices: Sequence[int], *, images: bool = True) -> dict[str, torch.Tensor]:
        """Samples ``indices`` stacked (``images`` False: without the frames)."""
        picked = self.samples[np.asarray(indices, dtype=np.int64)]
        b, h = len(picked), self.horizon
        tracks = np.zeros((b, h, NUM_POINTS, 2), np.float32)
        current = np.zeros((b, NUM_POINTS, 2), np.float32)
        valid = np.zeros((b, h, NUM_POINTS), bool)
        grasp = np.zeros((b, h), np.float32)
        terminal = np.zeros((b, h), np.float32)
        is_pad = np.zeros((b, h), bool)
        rows = np.zeros(b, np.int64)
        for i, (slot, step, view) in enumerate(picked):
            ep = self.episodes_data[slot]
            t = len(ep.grasp)
            future = np.arange(step + 1, step + 1 + h)
            is_pad[i] = future >= t
            future = np.minimum(future, t - 1)  # hold the last step past the end
            current[i] = ep.tracks[step, view]
            tracks[i] = ep.tracks[future, view]
            valid[i] = ep.state[future, view] != PointState.MISSING
            grasp[i], terminal[i] = ep.grasp[future], ep.terminal[future]
            if is_pad[i].any():
                terminal[i, is_pad[i]] = 1.0  # past the end the task is over
            rows[i] = ep.rows[0] + step
        tracks = np.where(valid[..., None], tracks, current[:, None])
        views = picked[:, 2]
        out = {
            "current": torch.from_numpy(current),
            "tracks": torch.from_numpy(tracks),
            "valid": torch.from_numpy(valid),
            "grasp": torch.from_numpy(grasp),
            "terminal": torch.from_numpy(terminal),
            "is_pad": torch.from_numpy(is_pad),
            "view": torch.from_numpy(views),
            "is_human": torch.from_numpy(self.is_human[np.asarray(indices)]),
        }
        if images:
            out["image"] = self._images(rows, views)
        return out

    def _images(self, rows: np.ndarray, views: np.ndarray) -> torch.Tensor:
        """uint8 (B, 3, H, W): stored size, or the resized cache."""
        if self._cache is not None:
            out = None
            for k, cam in enumerate(self.cameras):
                mask = views == k
                if not mask.any():
                    continue
                frames = self._cache[cam][torch.from_numpy(self._cache_row[rows[mask]])]
                if out is None:
                    out = torch.empty((len(rows), *frames.shape[1:]), dtype=torch.uint8)
                out[torch.from_numpy(mask)] = frames
            return out
        if self._reader is None:
            self._reader = StoreReader(self.path)
        shapes = {self.image_shapes[k] for k in set(views.tolist())}
        if len(shapes) != 1:
            raise TrackDataError(
                f"views of different sizes {shapes} in one batch; use "
                "--cache-images (frames resized once)"
            )
        out = np.empty((len(rows), *shapes.pop()), np.uint8)
        for k, cam in enumerate(self.cameras):
            mask = views == k
            if mask.any():
                out[mask] = self._reader.read_frames(cam, rows[mask].tolist())
        return torch.from_numpy(out).permute(0, 3, 1, 2)


@dataclass
class TrackTrainingData:
    """What ``policies.train`` needs, for MT-pi (the duck type of ``data.TrainingData``)."""

    features: TrackFeatures
    train: TrackDataset
    val: TrackDataset | None
    train_episodes: list[int]
    val_episodes: list[int]
    fingerprint: str
    seeds: list[int]
    weights: np.ndarray | None

    @classmethod
    def from_store(
        cls,
        path: str,
        config: MotionTrackConfig,
        selection: DataSelection,
        *,
        cache_images: bool,
        progress: bool = True,
    ) -> TrackTrainingData:
        reader = StoreReader(path)
        cameras = _track_cameras(reader, config, where=str(path))
        rate = reader.schema.stream_rates_hz.get(MAIN_STREAM)
        if not rate:
            raise TrackDataError(f"{path}: the schema declares no rate for {MAIN_STREAM!r}")
        sources = selection.source or (*(str(s) for s in ROBOT_SOURCES), str(Source.HUMAN_VIDEO))
        chosen = reader.select(task=selection.task, source=sources, success=selection.success)
        robot = [e for e in chosen if reader.episode(e).info.source != Source.HUMAN_VIDEO]
        if not robot:
            raise TrackDataError(
                f"{path}: no robot episodes match task={selection.task}, "
                f"source={list(sources)}: MT-pi needs robot demonstrations "
                "(human videos alone teach no gripper)"
            )
        train_eps, val_eps = split_episodes(chosen, selection.val_fraction, selection.split_seed)
        loaded = {
            e: _load_episode(reader, e, cameras)
            for e in tqdm(
                chosen, desc="load tracks", unit="episode", disable=not progress, leave=False
            )
        }
        calibration = _training_calibration(
            reader, [e for e in train_eps if e in robot] or robot, cameras
        )
        image_shapes = tuple(tuple(reader.spec(c).shape) for c in cameras)
        features = TrackFeatures(
            cameras=tuple(cameras),
            image_shapes=image_shapes,
            rate_hz=float(rate),
            calibration=calibration,
        )
        horizon = config.horizon_steps(features.rate_hz)
        cache = index = None
        if cache_images:
            cache, index = build_cache(
                reader, chosen, cameras, config.image_size, progress=progress
            )
        train = TrackDataset(
            str(path), [loaded[e] for e in train_eps], cameras, image_shapes, horizon, cache, index
        )
        val = (
            TrackDataset(
                str(path),
                [loaded[e] for e in val_eps],
                cameras,
                image_shapes,
                horizon,
                cache,
                index,
            )
            if val_eps
            else None
        )
        if len(train) == 0:
            raise TrackDataError(f"{path}: no training step has all track points in a view")
        seeds = sorted(
            {
                int(reader.episode(e).info.notes["seed"])
                for e in chosen
                if "seed" in (reader.episode(e).info.notes or {})
            }
        )
        weights = _balance(train.is_human, config.human_fraction)
        log.info(
            "MT-pi data: %d robot and %d human samples (views x steps)",
            int((~train.is_human).sum()),
            int(train.is_human.sum()),
        )
        return cls(
            features,
            train,
            val,
            list(train_eps),
            list(val_eps),
            reader.fingerprint(train_eps),
            seeds,
            weights,
        )

    def statistics(self, config: MotionTrackConfig) -> NormalizationStats:
        """min/max of the model's inputs (current points) and targets (point deltas, grasp,
        terminal) in model coordinates, over every training sample; image stats per view."""
        states, actions = [], []
        for start in range(0, len(self.train), 4096):
            indices = range(start, min(start + 4096, len(self.train)))
            batch = self.train.get_batch(list(indices), images=False)
            current, target = encode_targets(batch, self.features, config, offsets=None)
            states.append(current.reshape(len(current), -1))
            actions.append(target[~batch["is_pad"]])
        reader = StoreReader(self.train.path)
        image = stats_for(reader, list(self.features.cameras), self.train_episodes)
        return NormalizationStats(
            state=FeatureStats.of(torch.cat(states).numpy()),
            action=FeatureStats.of(torch.cat(actions).numpy()),
            image_mean=[image[c].mean for c in self.features.cameras],
            image_std=[image[c].std for c in self.features.cameras],
        )


def encode_targets(
    batch: dict[str, torch.Tensor],
    features: PolicyFeatures,
    config: MotionTrackConfig,
    offsets: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model coordinates of a batch: current points (B, P, 2) and targets (B, H, 2P + 2):
    point deltas from the current points, grasp, terminal."""
    views = batch["view"].long()
    shapes = torch.tensor([s[:2] for s in features.image_shapes])[views]  # (B, 2) h, w
    current = _per_sample_coords(batch["current"].double(), shapes, config, offsets)
    future = _per_sample_coords(batch["tracks"].double(), shapes, config, offsets)
    delta = (future - current[:, None]).flatten(2)
    target = torch.cat(
        [delta, batch["grasp"].double()[..., None], batch["terminal"].double()[..., None]], dim=-1
    )
    return current.float(), target.float()


def _per_sample_coords(
    pixels: torch.Tensor,
    shapes: torch.Tensor,
    config: MotionTrackConfig,
    offsets: torch.Tensor | None,
) -> torch.Tensor:
    out = torch.empty_like(pixels)
    for hw in {tuple(s.tolist()) for s in shapes}:
        mask = (shapes == torch.tensor(hw)).all(-1)
        out[mask] = to_model_coords(
            pixels[mask], hw, config, None if offsets is None else offsets[mask].to(pixels.dtype)
        )
    return out


def _balance(is_human: np.ndarray, human_fraction: float) -> np.ndarray | None:
    """Per-sample draw weights giving human samples ``human_fraction`` of each batch."""
    humans = int(is_human.sum())
    if humans == 0:
        return None
    robots = len(is_human) - humans
    return np.where(is_human, human_fraction / humans, (1.0 - human_fraction) / robots)


def _track_cameras(reader: StoreReader, config: MotionTrackConfig, *, where: str) -> list[str]:
    """The views MT-pi trains on: the config's cameras, else every camera with tracks."""
    schema = reader.schema.keys
    with_tracks = [
        k
        for k in schema
        if k.startswith(CAMERA_PREFIX)
        and schema[k].is_image
        and len(schema[k].shape) == 3
        and track_key(camera_name(k)) in schema
    ]
    chosen = list(config.cameras) if config.cameras else with_tracks
    if not with_tracks:
        raise TrackDataError(
            f"{where}: no motion tracks in this store (no {track_key('<cam>')} "
            "keys); label them first: `rl tracks label --store PATH`"
        )
    lacking = [c for c in chosen if c not in with_tracks]
    if lacking:
        raise TrackDataError(
            f"{where}: camera(s) {lacking} have no tracks (views with tracks: {with_tracks})"
        )
    if len(chosen) < 2:
        raise TrackDataError(
            f"{where}: MT-pi needs two views to triangulate; tracks exist for {chosen} only"
        )
    return chosen


def _training_calibration(
    reader: StoreReader, episodes: Sequence[int], cameras: Sequence[str]
) -> dict[str, dict]:
    """Per view: intrinsics, and the median pose over the episodes (robust to the odd
    recalibration); every camera must be calibrated in every episode."""
    out = {}
    for cam in cameras:
        views = []
        for e in episodes:
            try:
                views.append(episode_views(reader, e, [cam])[cam])
            except TrackGeometryError as exc:
                raise TrackDataError(str(exc)) from None
        poses = np.stack([v.T_base_camera for v in views])
        rotation = Rotation.from_matrix(poses[:, :3, :3]).mean().as_matrix()
        median = CameraView(
            views[0].name,
            views[0].intrinsics,
            make_transform(rotation, np.median(poses[:, :3, 3], axis=0)),
        )
        out[cam] = median.to_json()
    return out
