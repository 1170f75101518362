"""Marking episodes excluded (bad demos) without rewriting data; safe while a writer appends."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import zarr

from robot_learning.store import layout
from robot_learning.store.episodes import Curation
from robot_learning.store.errors import StoreError, StoreInputError


def set_excluded(
    path: str | os.PathLike[str], episodes: Sequence[int], *, excluded: bool, reason: str = ""
) -> None:
    """Exclude (or re-include) committed episodes; rewrites one small metadata chunk."""
    if layout.is_remote(path):
        raise StoreError(f"{path}: curation needs a local store")
    root_dir = layout.local_path(path)
    store = zarr.storage.LocalStore(root_dir)
    layout.open_root(store, str(root_dir))  # a clear error if this is not a store
    with layout.file_lock(root_dir / layout.META_LOCK, blocking=True, what="the meta lock"):
        root = zarr.open_group(store, mode="r+")
        ends = np.asarray(layout.open_array(root, layout.EPISODE_ENDS, str(root_dir))[:])
        n = layout.committed_count(ends)
        bad = [e for e in episodes if not 0 <= e < n]
        if bad:
            raise StoreInputError(f"{root_dir}: no committed episode {bad} ({n} committed)")
        curation = layout.open_array(root, layout.CURATION, str(root_dir))
        record = Curation(excluded=excluded, reason=reason, time_s=time.time()).to_json()
        for episode in episodes:
            curation[episode] = record
