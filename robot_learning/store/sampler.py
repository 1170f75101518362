"""The training sampler: a PyTorch Dataset of (observation window, action chunk) samples.

Contract, per sample (To = obs_horizon, Ta = action_horizon):
  obs key, low-dim  -> float32 (To, *shape)          normalized if asked
  obs key, image    -> uint8 (To, C, H, W), or float32 in [0, 1] with image_dtype="float32",
                       then ``image_transform``. uint8 is the default: 4x fewer bytes through
                       the loader's shared memory; the policy scales on its own device.
  action key        -> float32 (Ta, *shape)          normalized if asked
  "action_is_pad"   -> bool (Ta,)  True where the chunk ran past the episode's end
  "episode", "step" -> int64 scalars (episode index, anchor row within the episode)

Low-dim keys of the selected episodes are loaded into memory once (they are small); images
are read and decoded per sample, in each data-loader worker. The dataset pickles without its
open store handle, so it works with any multiprocessing start method.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from robot_learning.store.normalization import KeyStats, stats_for
from robot_learning.store.reader import StoreReader
from robot_learning.store.schema import MAIN_STREAM
from robot_learning.store.windows import action_rows, anchors, observation_rows

NormalizationMode = Literal["mean_std", "min_max"]
ACTION_IS_PAD = "action_is_pad"


class SequenceDataset(Dataset[dict[str, torch.Tensor]]):
    """Windows over the selected episodes of a store (local path or fsspec URL)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        obs_keys: Sequence[str],
        action_keys: Sequence[str],
        obs_horizon: int = 2,
        action_horizon: int = 16,
        episodes: Sequence[int] | None = None,
        select: Mapping[str, Any] | None = None,
        image_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        normalization: Mapping[str, NormalizationMode] | None = None,
        image_dtype: Literal["uint8", "float32"] = "uint8",
    ) -> None:
        if obs_horizon < 1 or action_horizon < 1:
            raise ValueError(
                f"horizons must be >= 1, got obs {obs_horizon}, action {action_horizon}"
            )
        self.path = str(path)
        reader = StoreReader(path)
        for key in (*obs_keys, *action_keys):
            if reader.spec(key).stream != MAIN_STREAM:
                raise ValueError(
                    f"{path}: key {key!r} is in stream {reader.spec(key).stream!r};"
                    f" the sampler reads the {MAIN_STREAM!r} stream"
                )
        self.episodes = list(episodes) if episodes is not None else reader.select(**(select or {}))
        if not self.episodes:
            raise ValueError(f"{path}: no episodes selected ({select or 'all'})")
        for key in (*obs_keys, *action_keys):
            lacking = [e for e in self.episodes if key not in reader.episode(e).info.keys]
            if lacking:
                raise ValueError(
                    f"{path}: key {key!r} is missing in episodes {lacking[:10]}; "
                    "select episodes that recorded it (e.g. by source)"
                )
        self.obs_keys, self.action_keys = list(obs_keys), list(action_keys)
        self.obs_horizon, self.action_horizon = obs_horizon, action_horizon
        if image_dtype not in ("uint8", "float32"):
            raise ValueError(f"image_dtype must be 'uint8' or 'float32', got {image_dtype!r}")
        self.image_transform = image_transform
        self.image_dtype = image_dtype
        self.image_keys = [k for k in self.obs_keys if reader.spec(k).is_image]
        rows = [reader.episode(e).rows[MAIN_STREAM] for e in self.episodes]
        self._anchors = anchors(rows)
        self._episode_of_anchor = np.repeat(self.episodes, [e - s for s, e in rows])
        self.fingerprint = reader.fingerprint(self.episodes)
        self.normalization = dict(normalization or {})
        self.stats: dict[str, KeyStats] = (
            stats_for(reader, list(self.normalization), self.episodes) if self.normalization else {}
        )
        self._lowdim = self._load_lowdim(reader, rows)
        self._reader: StoreReader | None = reader

    def _load_lowdim(
        self, reader: StoreReader, rows: list[tuple[int, int]]
    ) -> dict[str, np.ndarray]:
        """Low-dim keys, normalized once, indexed by store row (unselected rows stay zero)."""
        out: dict[str, np.ndarray] = {}
        keys = [
            k
            for k in dict.fromkeys((*self.obs_keys, *self.action_keys))
            if not reader.spec(k).is_image
        ]
        total = reader.num_steps
        for key in keys:
            spec = reader.spec(key)
            full = np.zeros((total, *spec.shape), dtype=np.float32)
            for start, stop in rows:
                full[start:stop] = reader.read_rows(key, start, stop)
            out[key] = self._normalize(key, full)
        return out

    def _normalize(self, key: str, values: np.ndarray) -> np.ndarray:
        mode = self.normalization.get(key)
        if mode is None:
            return values
        stats = self.stats[key].arrays()
        if mode == "mean_std":
            return (values - stats["mean"]) / np.maximum(stats["std"], 1e-6)
        if mode == "min_max":  # to [-1, 1], as diffusion policies expect
            scale = np.maximum(stats["max"] - stats["min"], 1e-6)
            return 2.0 * (values - stats["min"]) / scale - 1.0
        raise ValueError(f"unknown normalization {mode!r} for key {key!r}")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_reader"] = None  # reopened lazily in each worker process
        return state

    def __len__(self) -> int:
        return len(self._anchors)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if self._reader is None:
            self._reader = StoreReader(self.path)
        anchor, start, stop = (int(v) for v in self._anchors[index])
        obs = observation_rows(anchor, start, stop, self.obs_horizon)
        act, is_pad = action_rows(anchor, start, stop, self.action_horizon)
        sample: dict[str, torch.Tensor] = {}
        for key in self.obs_keys:
            if key in self.image_keys:
                frames = self._reader.read_frames(key, obs.tolist())
                if frames.ndim == 3:
                    frames = frames[..., None]
                # transpose in uint8 (4x fewer bytes), then one contiguous float conversion
                image = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
                if self.image_dtype == "float32":
                    image = image.to(torch.float32).mul_(1.0 / 255.0)
                sample[key] = self.image_transform(image) if self.image_transform else image
            else:
                sample[key] = torch.from_numpy(self._lowdim[key][obs])
        for key in self.action_keys:
            sample[key] = torch.from_numpy(self._lowdim[key][act])
        sample[ACTION_IS_PAD] = torch.from_numpy(is_pad)
        sample["episode"] = torch.tensor(int(self._episode_of_anchor[index]))
        sample["step"] = torch.tensor(anchor - start)
        return sample
