"""Which rows a training sample reads: window indexing kept apart from data reading.

Shapes (the sampler's contract): for an anchor step t of an episode with rows [s, e),
observations are rows t-To+1 .. t and actions rows t .. t+Ta-1, clamped into [s, e) so the
edge rows repeat (padding), with a mask telling which action rows are padding.
``To`` = observation horizon, ``Ta`` = action horizon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def anchors(episode_rows: Sequence[tuple[int, int]]) -> np.ndarray:
    """(N, 3) int64: anchor row, episode start row, episode stop row; every step an anchor."""
    parts = [
        np.stack([np.arange(s, e), np.full(e - s, s), np.full(e - s, e)], axis=1)
        for s, e in episode_rows
        if e > s
    ]
    if not parts:
        return np.zeros((0, 3), dtype=np.int64)
    return np.concatenate(parts).astype(np.int64)


Rows = int | np.ndarray


def observation_rows(anchor: Rows, start: Rows, stop: Rows, horizon: int) -> np.ndarray:
    """(..., horizon) rows ending at ``anchor``; scalars or (B,) arrays of anchors."""
    anchor, start, stop = (np.asarray(v)[..., None] for v in (anchor, start, stop))
    return np.clip(anchor + np.arange(1 - horizon, 1), start, stop - 1)


def action_rows(
    anchor: Rows, start: Rows, stop: Rows, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """(..., horizon) rows from ``anchor`` and the padding mask (True past the episode end)."""
    anchor, start, stop = (np.asarray(v)[..., None] for v in (anchor, start, stop))
    wanted = anchor + np.arange(horizon)
    return np.clip(wanted, start, stop - 1), wanted >= stop


def split_episodes(
    episodes: Sequence[int], val_fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Train/validation split by episode, never by frame (neighbouring frames leak)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(episodes))
    n_val = int(round(len(episodes) * val_fraction))
    if val_fraction > 0 and len(episodes) > 1:
        n_val = max(1, n_val)
    val = sorted(episodes[i] for i in order[:n_val])
    train = sorted(episodes[i] for i in order[n_val:])
    return train, val
