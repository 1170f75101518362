"""Training data from a store: episode selection, train/validation split by episode, an
optional in-memory cache of resized frames, statistics, and step-indexed batches.

Batches are a pure function of (seed, step, rank): resuming at step N draws exactly the
batches an uninterrupted run would have drawn, and each DDP rank takes its own shard.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler
from tqdm import tqdm

from policies.action_space import ActionSpace
from policies.config import PolicyConfig
from policies.features import PolicyFeatures
from policies.images import resize
from policies.normalization import FeatureStats, NormalizationStats
from robot_learning.keys import ACTION, CONTROL_SOURCE, EE_POSE, GRIPPER_WIDTH
from robot_learning.runtime.controllers import ControlSource
from robot_learning.store import MAIN_STREAM, Source, StoreReader
from robot_learning.store.batch_buffers import BufferPool
from robot_learning.store.normalization import stats_for
from robot_learning.store.sample_windows import split_episodes
from robot_learning.store.sampler import SequenceDataset

log = logging.getLogger(__name__)

ROBOT_SOURCES = (Source.TELEOP, Source.POLICY, Source.INTERVENTION)


@dataclass(frozen=True)
class DataSelection:
    """Which episodes train a policy. Excluded (curated-out) episodes never do."""

    task: tuple[str, ...] | None = None
    source: tuple[str, ...] | None = None  # None: every source that has robot actions
    success: bool | None = True  # failed demonstrations teach failure
    val_fraction: float = 0.1
    split_seed: int = 0
    # HG-DAgger: in policy/intervention episodes, how often a step is drawn relative to a
    # teleop step, by who was in control (``control_source``). The human's corrections teach;
    # the policy's own steps, which the operator let pass, are by default left out.
    human_weight: float = 1.0
    policy_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.human_weight < 0 or self.policy_weight < 0:
            raise ValueError(
                f"human_weight={self.human_weight} and policy_weight="
                f"{self.policy_weight} must be >= 0"
            )

    def to_json(self) -> dict:
        return {
            "task": self.task,
            "source": self.source,
            "success": self.success,
            "val_fraction": self.val_fraction,
            "split_seed": self.split_seed,
            "human_weight": self.human_weight,
            "policy_weight": self.policy_weight,
        }


def select_episodes(reader: StoreReader, selection: DataSelection) -> list[int]:
    sources = selection.source or tuple(str(s) for s in ROBOT_SOURCES)
    chosen = reader.select(task=selection.task, source=sources, success=selection.success)
    if not chosen:
        anything = reader.select(task=selection.task, success=selection.success)
        kinds = sorted({str(reader.episode(e).info.source) for e in anything})
        raise ValueError(
            f"{reader.path}: no episodes with robot actions match task={selection.task}, "
            f"source={list(sources)}, success={selection.success}"
            + (f" (the matching episodes are {', '.join(kinds)} only)" if kinds else "")
        )
    lacking = [e for e in chosen if ACTION not in reader.episode(e).info.keys]
    if lacking:
        raise ValueError(f"{reader.path}: episodes {lacking[:10]} recorded no {ACTION!r}")
    return chosen


class PolicyDataset(SequenceDataset):
    """The store sampler, with frames optionally served from an in-memory cache of
    already-resized frames (decode once, not every epoch: the CPU-bound part of training)."""

    _cache: dict[str, torch.Tensor] | None = None
    _cache_row: np.ndarray | None = None

    def attach_cache(self, cache: dict[str, torch.Tensor], row_index: np.ndarray) -> None:
        self._cache, self._cache_row = cache, row_index

    def _images(
        self, key: str, rows: np.ndarray, buffers: BufferPool | None = None
    ) -> torch.Tensor:
        if self._cache is None:
            return super()._images(key, rows, buffers)
        return self._cache[key][torch.from_numpy(self._cache_row[rows])]


def build_cache(
    reader: StoreReader,
    episodes: Sequence[int],
    cameras: Sequence[str],
    size: tuple[int, int],
    *,
    progress: bool = True,
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """uint8 (rows, 3, h, w) per camera for the episodes' rows, and store row -> cache row."""
    rows = np.concatenate([np.arange(*reader.episode(e).rows["step"]) for e in episodes])
    index = np.full(reader.num_steps, -1, dtype=np.int64)
    index[rows] = np.arange(len(rows))
    cache = {}
    bar = tqdm(
        total=len(rows) * len(cameras),
        desc="decode frames",
        unit="frame",
        disable=not progress,
        leave=False,
    )
    for cam in cameras:
        out = torch.empty((len(rows), 3, *size), dtype=torch.uint8)
        for start in range(0, len(rows), 256):
            part = rows[start : start + 256]
            frames = torch.from_numpy(reader.read_frames(cam, part.tolist()))
            out[start : start + len(part)] = resize(frames.permute(0, 3, 1, 2), size)
            bar.update(len(part))
        cache[cam] = out
    bar.close()
    return cache, index


@dataclass
class TrainingData:
    features: PolicyFeatures
    train: PolicyDataset
    val: PolicyDataset | None
    train_episodes: list[int]
    val_episodes: list[int]
    fingerprint: str  # of the training episodes
    seeds: list[int]  # simulator seeds of the selected episodes (evaluation avoids them)
    weights: np.ndarray | None = None  # per training sample; None: uniform

    @classmethod
    def from_store(
        cls,
        path: str,
        config: PolicyConfig,
        selection: DataSelection,
        *,
        cache_images: bool,
        progress: bool = True,
    ) -> TrainingData:
        reader = StoreReader(path)
        features = PolicyFeatures.from_schema(
            reader.schema, where=str(path), cameras=config.cameras
        )
        episodes = select_episodes(reader, selection)
        if selection.val_fraction > 0 and len(episodes) < 2:
            raise ValueError(
                f"{path}: {len(episodes)} episode(s) selected; a validation split "
                "needs at least 2 (or use --val-fraction 0)"
            )
        train_eps, val_eps = split_episodes(episodes, selection.val_fraction, selection.split_seed)
        horizon = config.horizon_steps(features.rate_hz)
        keys = dict(
            obs_keys=[*features.cameras, EE_POSE, GRIPPER_WIDTH],
            action_keys=[ACTION],
            obs_horizon=config.obs_horizon,
            action_horizon=horizon,
        )
        train = PolicyDataset(path, episodes=train_eps, **keys)
        val = PolicyDataset(path, episodes=val_eps, **keys) if val_eps else None
        if cache_images:
            cache, index = build_cache(
                reader, episodes, features.cameras, config.image_size, progress=progress
            )
            for dataset in (train, val):
                if dataset is not None:
                    dataset.attach_cache(cache, index)
        seeds = sorted(
            {
                int(reader.episode(e).info.notes["seed"])
                for e in episodes
                if "seed" in (reader.episode(e).info.notes or {})
            }
        )
        weights = sample_weights(reader, train, selection)
        if weights is not None:
            by_source = _weighted_counts(reader, train, weights)
            log.info("HG-DAgger weighting: %s", by_source)
        return cls(
            features, train, val, train_eps, val_eps, reader.fingerprint(train_eps), seeds, weights
        )

    def statistics(self, config: PolicyConfig) -> NormalizationStats:
        """Feature statistics over every training window; image stats from the store."""
        space = ActionSpace(config.action_mode)
        states, actions = [], []
        for start in range(0, len(self.train), 4096):
            batch = self.train.get_batch(
                range(start, min(start + 4096, len(self.train))), images=False
            )
            ee = batch[EE_POSE].double()
            states.append(space.encode_state(ee[:, -1], batch[GRIPPER_WIDTH].double()[:, -1]))
            encoded = space.encode_actions(batch[ACTION].double(), ee[:, -1])
            valid = ~batch["action_is_pad"]
            actions.append(encoded[valid])
        reader = StoreReader(self.train.path)
        image_stats = stats_for(reader, list(self.features.cameras), self.train_episodes)
        return NormalizationStats(
            state=FeatureStats.of(torch.cat(states).numpy()),
            action=FeatureStats.of(torch.cat(actions).numpy()),
            image_mean=[image_stats[c].mean for c in self.features.cameras],
            image_std=[image_stats[c].std for c in self.features.cameras],
        )


def sample_weights(
    reader: StoreReader, dataset: PolicyDataset, selection: DataSelection
) -> np.ndarray | None:
    """Per-sample draw weights from who controlled each step; None when all are teleop."""
    episodes = np.asarray(dataset._episode_of_anchor)
    robot_run = [
        e
        for e in dataset.episodes
        if str(reader.episode(e).info.source) in (Source.POLICY, Source.INTERVENTION)
    ]
    if not robot_run:
        return None
    weights = np.ones(len(episodes), dtype=np.float64)
    anchor_rows = dataset._anchors[:, 0]
    for e in robot_run:
        info = reader.episode(e).info
        if CONTROL_SOURCE not in info.keys:
            raise ValueError(
                f"{reader.path}: {info.source} episode {e} recorded no "
                f"{CONTROL_SOURCE!r}; it cannot be weighted by who was in control"
            )
        start = reader.episode(e).rows[MAIN_STREAM][0]
        control = reader.read_episode(e, keys=[CONTROL_SOURCE])[CONTROL_SOURCE]
        mask = episodes == e
        sources = control[anchor_rows[mask] - start]
        weights[mask] = np.where(
            sources == ControlSource.HUMAN,
            selection.human_weight,
            np.where(sources == ControlSource.POLICY, selection.policy_weight, 0.0),
        )
    if weights.sum() <= 0:
        raise ValueError(
            f"{reader.path}: every selected step has weight 0 (human_weight="
            f"{selection.human_weight}, policy_weight={selection.policy_weight})"
        )
    return weights


def _weighted_counts(
    reader: StoreReader, dataset: PolicyDataset, weights: np.ndarray
) -> dict[str, str]:
    out = {}
    sources = np.array([str(reader.episode(e).info.source) for e in dataset._episode_of_anchor])
    for source in np.unique(sources):
        mask = sources == source
        drawn, total = int((weights[mask] > 0).sum()), weights[mask].sum()
        out[str(source)] = f"{drawn} steps, weight {total:.0f}"
    return out


class StepBatches(Sampler[list[int]]):
    """Batch indices for steps ``start_step .. steps-1``: epoch e is a permutation seeded
    by (seed, e), rank r takes every world-th index of it, batches never straddle epochs."""

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        seed: int,
        steps: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        weights: np.ndarray | None = None,
    ) -> None:
        """``weights``: draw samples with these relative probabilities (with replacement,
        still seeded by (seed, epoch)); None: each sample once per epoch."""
        self.num_samples, self.batch_size = num_samples, batch_size
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.seed, self.steps, self.start_step = seed, steps, start_step
        self.rank, self.world_size = rank, world_size
        self.per_epoch = (num_samples // world_size) // batch_size
        if self.per_epoch == 0:
            raise ValueError(
                f"batch size {batch_size} x {world_size} rank(s) exceeds the "
                f"{num_samples} training samples"
            )
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            if self.weights is None:
                order = torch.randperm(self.num_samples, generator=g)
            else:
                order = torch.multinomial(
                    self.weights, self.num_samples, replacement=True, generator=g
                )
            self._order = order[self.rank :: self.world_size]
            self._epoch = epoch
        return self._order[i * self.batch_size : (i + 1) * self.batch_size].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.steps):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)
