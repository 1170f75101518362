"""Bringing a store back to its last commit after a crash (or trimming after a clean close)."""

from __future__ import annotations

import datetime
import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from robot_learning.store import layout
from robot_learning.store.errors import StoreCorruptError, StoreFullError
from robot_learning.store.frame_files import frame_files, is_sharded


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
    removed_arrays: list[str] = field(default_factory=list)  # left undeclared by annotation
    freed_bytes: int = 0  # uncommitted frame files deleted before anything was written

    @property
    def changed(self) -> bool:
        return bool(
            self.dropped_episode
            or self.dropped_commit_entries
            or self.trimmed_meta
            or self.removed_partial_files
            or self.removed_arrays
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
        if self.removed_arrays:
            parts.append(
                "removed arrays an interrupted annotation left undeclared: "
                + ", ".join(self.removed_arrays)
            )
        if self.freed_bytes:
            parts.append(f"freed {self.freed_bytes / 1e6:.1f} MB of uncommitted frames")
        return "; ".join(parts)


def recover(path: str | os.PathLike[str]) -> RecoveryReport:
    """Take the writer lock and recover; fails if a live writer holds the store."""
    root_dir = layout.local_path(path)
    if not (root_dir / "zarr.json").exists():
        layout.open_root(layout.open_zarr_store(root_dir, read_only=True), str(root_dir))
    with layout.file_lock(root_dir / layout.WRITER_LOCK, blocking=False, what="the writer lock"):
        return recover_locked(root_dir)


def recover_locked(root_dir: Path, *, remove_partial_files: bool = True) -> RecoveryReport:
    """Recover a store whose writer lock the caller holds. Never touches committed data.

    Works on a full disk: the uncommitted frames (the bulk of an interrupted episode) and
    temporary files are deleted before the first byte is written.
    """
    report = RecoveryReport(path=str(root_dir))
    report.freed_bytes, report.removed_partial_files = free_uncommitted(
        root_dir, remove_partial_files=remove_partial_files
    )
    try:
        try:
            return _recover_locked(root_dir, report)
        except OSError as exc:
            freed = layout.release_reserve(root_dir) if exc.errno == errno.ENOSPC else 0
            if not freed:
                raise
            report.freed_bytes += freed  # the writer's reserve: room for the metadata
            return _recover_locked(root_dir, report)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        free = shutil.disk_usage(root_dir).free
        raise StoreFullError(
            f"{root_dir}: the disk is full ({free / 1e6:.2f} MB free after deleting "
            f"{report.freed_bytes / 1e6:.1f} MB of uncommitted frames): recovery could not "
            "write its few KB of metadata. Committed episodes are intact (nothing committed "
            "was touched); free some space on this filesystem and run `rl store recover "
            f"{root_dir}` again"
        ) from exc


def free_uncommitted(root_dir: Path, *, remove_partial_files: bool) -> tuple[int, int]:
    """Delete frame files past the commit point (and temporary files): (bytes, files).

    Only reads and deletes, so it succeeds on a full disk. Low-dim rows are written at commit
    and share chunks with committed rows: resizing trims those later.
    """
    where = str(root_dir)
    root = layout.open_root(zarr.storage.LocalStore(root_dir, read_only=True), where)
    _, schema = layout.read_schema(root, where)
    _, rows = _committed_rows(root, schema, where)
    freed = 0
    for key, spec in schema.keys.items():
        if not spec.is_image:
            continue
        array = layout.open_array(root, layout.data_path(key), where)
        frames = frame_files(root_dir, key, spec, array)
        # .../c/<n>/0/0 -> .../c, n a row (per-frame files) or a shard (sharded layout)
        row_dir = frames.location(0).parents[len(spec.shape)]
        if not row_dir.is_dir():
            continue
        first_free = rows[spec.stream]
        if is_sharded(array):  # a shard holding any committed frame stays whole
            per_shard = int(array.metadata.chunk_grid.chunk_shape[0])
            first_free = -(-first_free // per_shard)
        for entry in os.scandir(row_dir):
            if entry.name.isdigit() and int(entry.name) >= first_free:
                freed += _tree_bytes(Path(entry.path))
                shutil.rmtree(entry.path, ignore_errors=True)
    removed = 0
    if remove_partial_files:
        for leftover in layout.leftover_partial_files(root_dir):
            freed += leftover.stat().st_size
            leftover.unlink(missing_ok=True)
            removed += 1
    return freed, removed


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _committed_rows(root: zarr.Group, schema: Any, where: str) -> tuple[int, dict[str, int]]:
    """Committed episodes and, per stream, the rows they cover (read only)."""
    ends = np.asarray(layout.open_array(root, layout.EPISODE_ENDS, where)[:])
    n = layout.committed_count(ends)
    rows = {stream: (int(ends[n - 1]) if n else 0) for stream in schema.streams}
    for stream in schema.streams[1:]:
        array = layout.open_array(root, layout.ends_path(stream), where)
        if n and array.shape[0] >= n:
            rows[stream] = int(np.asarray(array[n - 1]))
    return n, rows


def _recover_locked(root_dir: Path, report: RecoveryReport) -> RecoveryReport:
    where = str(root_dir)
    store = zarr.storage.LocalStore(root_dir)
    root = layout.open_root(store, where, mode="r+")
    _, schema = layout.read_schema(root, where)
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
        for key in layout.undeclared_annotation_arrays(root, schema):
            shutil.rmtree(root_dir / layout.data_path(key), ignore_errors=True)
            report.removed_arrays.append(key)
        pending = zarr.open_group(store, path=layout.META_GROUP, mode="r").attrs.get(
            layout.PENDING_ATTR
        )
        if pending is not None:
            if isinstance(pending, dict) and pending.get("index", -1) >= n:
                report.dropped_episode = dict(pending)
            layout.update_meta_attrs(store, None, {layout.PENDING_ATTR: None})
    return report
