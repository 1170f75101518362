"""Per-key normalization statistics, computed from a store and saved in it.

Saved under the meta group's ``normalization`` attribute, keyed by the fingerprint of the
episode selection, so a training run on the same selection reuses them and a checkpoint can
carry exactly the statistics it was trained with.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import zarr

from robot_learning.store import layout
from robot_learning.store.reader import StoreReader

_MAX_SAVED_SELECTIONS = 16
_IMAGE_SAMPLE_FRAMES = 256


@dataclass(frozen=True)
class KeyStats:
    """Element-wise for low-dim keys; per channel for images (values scaled to [0, 1])."""

    min: list[float]
    max: list[float]
    mean: list[float]
    std: list[float]
    count: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float32) for k, v in asdict(self).items() if k != "count"}


def compute_stats(
    reader: StoreReader, keys: Sequence[str], episodes: Sequence[int]
) -> dict[str, KeyStats]:
    """Statistics of ``keys`` over the committed rows of ``episodes`` (NaN fill rows skipped)."""
    out = {}
    for key in keys:
        spec = reader.spec(key)
        chunks = []
        chosen = list(episodes)
        if spec.is_image:  # a few frames from up to 32 episodes describe the color statistics
            chosen = chosen[:: max(1, len(chosen) // (_IMAGE_SAMPLE_FRAMES // 8))]
        for e in chosen:
            start, stop = reader.episode(e).rows[spec.stream]
            if key not in reader.episode(e).info.keys or start == stop:
                continue
            if spec.is_image:
                rows = np.linspace(start, stop - 1, num=max(1, min(stop - start, 8))).astype(int)
                frames = reader.read_frames(key, rows).astype(np.float32) / 255.0
                chunks.append(frames.reshape(-1, frames.shape[-1] if frames.ndim == 4 else 1))
            else:
                rows = reader.read_rows(key, start, stop).astype(np.float64)
                chunks.append(rows.reshape(len(rows), -1))
        if not chunks:
            raise ValueError(f"{reader.path}: key {key!r} has no rows in the selected episodes")
        data = np.concatenate(chunks)
        data = data[np.isfinite(data).all(axis=1)]
        shape = (-1,) if spec.is_image else spec.shape
        out[key] = KeyStats(
            min=data.min(0).reshape(shape).tolist(),
            max=data.max(0).reshape(shape).tolist(),
            mean=data.mean(0).reshape(shape).tolist(),
            std=data.std(0).reshape(shape).tolist(),
            count=int(len(data)),
        )
    return out


def pool_stats(parts: Sequence[dict[str, KeyStats]]) -> dict[str, KeyStats]:
    """One set of statistics from those of several selections (several stores), exactly as
    if computed over all their rows at once (pooled mean and variance, overall min/max)."""
    pooled = {}
    for key in parts[0]:
        stats = [p[key] for p in parts]
        counts = np.array([s.count for s in stats], dtype=np.float64)
        means = np.array([s.mean for s in stats], dtype=np.float64)
        stds = np.array([s.std for s in stats], dtype=np.float64)
        weights = (counts / counts.sum()).reshape(-1, *([1] * (means.ndim - 1)))
        mean = (weights * means).sum(0)
        var = (weights * (stds**2 + (means - mean) ** 2)).sum(0)
        pooled[key] = KeyStats(
            min=np.min([s.min for s in stats], axis=0).tolist(),
            max=np.max([s.max for s in stats], axis=0).tolist(),
            mean=mean.tolist(),
            std=np.sqrt(var).tolist(),
            count=int(counts.sum()),
        )
    return pooled


def save_stats(path: str | os.PathLike[str], fingerprint: str, stats: dict[str, KeyStats]) -> None:
    """Store ``stats`` for the selection ``fingerprint`` (keeps the 16 most recent)."""
    root_dir = layout.local_path(path)
    store = zarr.storage.LocalStore(root_dir)
    with layout.file_lock(root_dir / layout.META_LOCK, blocking=True, what="the meta lock"):
        meta = zarr.open_group(store, path=layout.META_GROUP, mode="r")
        saved: dict[str, Any] = dict(meta.attrs.get(layout.NORMALIZATION_ATTR, {}))
        entry = saved.get(fingerprint, {"keys": {}})
        entry["keys"] = {**entry["keys"], **{k: asdict(v) for k, v in stats.items()}}
        entry["time_s"] = time.time()
        saved[fingerprint] = entry
        newest = sorted(saved, key=lambda f: saved[f]["time_s"])[-_MAX_SAVED_SELECTIONS:]
        layout.update_meta_attrs(
            store, None, {layout.NORMALIZATION_ATTR: {f: saved[f] for f in newest}}
        )


def load_stats(reader: StoreReader, fingerprint: str) -> dict[str, KeyStats]:
    entry = reader.meta_attrs().get(layout.NORMALIZATION_ATTR, {}).get(fingerprint, {})
    return {k: KeyStats(**v) for k, v in entry.get("keys", {}).items()}


def stats_for(
    reader: StoreReader, keys: Sequence[str], episodes: Sequence[int], *, save: bool = True
) -> dict[str, KeyStats]:
    """Saved statistics for this selection, computing (and saving) the missing ones."""
    fingerprint = reader.fingerprint(episodes)
    stats = load_stats(reader, fingerprint)
    missing = [k for k in keys if k not in stats]
    if missing:
        fresh = compute_stats(reader, missing, episodes)
        stats.update(fresh)
        if save and not layout.is_remote(reader.path):
            save_stats(reader.path, fingerprint, fresh)
    return {k: stats[k] for k in keys}
