"""Bringing a store back to its last commit after a crash (or trimming after a clean close)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from robot_learning.store import layout
from robot_learning.store.errors import StoreCorruptError


@dataclass
class RecoveryReport:
    """What recovery changed; ``message()`` is what the user is told."""

    path: str
    committed_episodes: int = 0
    dropped_episode: dict[str, Any] | None = None  # the pending episode that never committed
    dropped_commit_entries: int = 0  # half-written entries of meta/episode_ends
    trimmed_rows: dict[str, int] = field(default_factory=dict)  # key -> rows past the commit
    trimmed_meta: dict[str, int] = field(default_factory=dict)  # meta array -> entries
    removed_partial_files: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.dropped_episode
            or self.dropped_commit_entries
            or self.trimmed_meta
            or self.removed_partial_files
            or any(self.trimmed_rows.values())
        )

    def message(self) -> str:
        if not self.changed:
            return f"{self.path}: clean, {self.committed_episodes} committed episodes"
        parts = [f"{self.path}: recovered to {self.committed_episodes} committed episodes"]
        if self.dropped_episode:
            ep = self.dropped_episode
            started = datetime.datetime.fromtimestamp(ep.get("start_time_s", 0)).isoformat(
                timespec="seconds"
            )
            parts.append(
                f"dropped uncommitted episode {ep.get('index')} (task "
                f"{ep.get('task')!r}, source {ep.get('source')}, started {started}, "
                f"writer pid {ep.get('pid')})"
            )
        if self.dropped_commit_entries:
            parts.append(f"dropped {self.dropped_commit_entries} half-written commit entries")
        rows = {k: v for k, v in self.trimmed_rows.items() if v}
        if rows:
            parts.append(
                "trimmed rows past the last commit: "
                + ", ".join(f"{k} {v}" for k, v in sorted(rows.items()))
            )
        if self.trimmed_meta:
            parts.append(
                "trimmed metadata entries: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.trimmed_meta.items()))
            )
        if self.removed_partial_files:
            parts.append(
                f"removed {self.removed_partial_files} temporary files of interrupted writes"
            )
        return "; ".join(parts)


def recover(path: str | os.PathLike[str]) -> RecoveryReport:
    """Take the writer lock and recover; fails if a live writer holds the store."""
    root_dir = layout.local_path(path)
    if not (root_dir / "zarr.json").exists():
        layout.open_root(layout.open_zarr_store(root_dir, read_only=True), str(root_dir))
    with layout.file_lock(root_dir / layout.WRITER_LOCK, blocking=False, what="the writer lock"):
        return recover_locked(root_dir)


def recover_locked(root_dir: Path, *, remove_partial_files: bool = True) -> RecoveryReport:
    """Recover a store whose writer lock the caller holds. Never touches committed data."""
    where = str(root_dir)
    store = zarr.storage.LocalStore(root_dir)
    root = layout.open_root(store, where, mode="r+")
    _, schema = layout.read_schema(root, where)
    report = RecoveryReport(path=where)
    with layout.file_lock(root_dir / layout.META_LOCK, blocking=True, what="the meta lock"):
        ends_array = layout.open_array(root, layout.EPISODE_ENDS, where)
        ends = np.asarray(ends_array[:])
        n = layout.committed_count(ends)
        report.committed_episodes = n
        if len(ends) > n:
            report.dropped_commit_entries = len(ends) - n
            ends_array.resize((n,))
        rows = {stream: (int(ends[n - 1]) if n else 0) for stream in schema.streams}
        meta_paths = [layout.EPISODE_INFO, layout.CURATION]
        meta_paths += [layout.ends_path(s) for s in schema.streams[1:]]
        for path in meta_paths:
            array = layout.open_array(root, path, where)
            if array.shape[0] < n:
                raise StoreCorruptError(
                    f"{where}/{path}: {array.shape[0]} entries for {n} "
                    "committed episodes; cannot recover automatically"
                )
            if path.startswith(layout.STREAM_ENDS_GROUP) and n:
                rows[path.rsplit("/", 1)[1]] = int(np.asarray(array[n - 1]))
            if array.shape[0] > n:
                report.trimmed_meta[path] = array.shape[0] - n
                array.resize((n,))
        for key, spec in schema.keys.items():
            array = layout.open_array(root, layout.data_path(key), where)
            committed = rows[spec.stream]
            if array.shape[0] < committed:
                raise StoreCorruptError(
                    f"{where}/{layout.data_path(key)}: {array.shape[0]} rows "
                    f"but {committed} are committed"
                )
            if array.shape[0] > committed:
                report.trimmed_rows[key] = array.shape[0] - committed
                array.resize((committed, *array.shape[1:]))
        pending = zarr.open_group(store, path=layout.META_GROUP, mode="r").attrs.get(
            layout.PENDING_ATTR
        )
        if pending is not None:
            if isinstance(pending, dict) and pending.get("index", -1) >= n:
                report.dropped_episode = dict(pending)
            layout.update_meta_attrs(store, None, {layout.PENDING_ATTR: None})
    if remove_partial_files:
        for leftover in layout.leftover_partial_files(root_dir):
            leftover.unlink(missing_ok=True)
            report.removed_partial_files += 1
    return report
