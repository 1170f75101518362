"""Appending episodes to a store, crash-safe at any instant.

Commit protocol (see layout.py): data rows are written first (images continuously, in a
background thread, so the recording loop never waits on encoding), then the episode's
metadata and extra-stream ends, then ``meta/episode_ends`` last. A process killed before that
last write leaves an uncommitted tail that the next writer (or ``rl store recover``) drops,
naming what it dropped. With ``durable=True`` the data is flushed to disk (``syncfs``)
before the commit record, so a power cut cannot commit rows that never reached the disk.

Rows are checked on append by ``row_checks``; the syncfs call lives in ``durability``;
whether a directory is a store (or an interrupted creation) is ``layout``'s to say.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from robot_learning.store import layout
from robot_learning.store.durability import sync_filesystem
from robot_learning.store.episodes import Curation, EpisodeInfo
from robot_learning.store.errors import StoreError, StoreFullError, StoreInputError
from robot_learning.store.frame_files import frame_files
from robot_learning.store.recovery import RecoveryReport, free_uncommitted, recover_locked
from robot_learning.store.row_checks import check_rows
from robot_learning.store.schema import MAIN_STREAM, SCHEMA_VERSION, Source, StoreSchema

log = logging.getLogger(__name__)

_QUEUE_BATCHES = 8  # image batches in flight before append() applies back-pressure
_Job = tuple[str, int, np.ndarray | list[np.ndarray]]  # key, first row, its rows


@dataclass
class _OpenEpisode:
    index: int
    source: Source
    task: str
    operator: str
    start_time_s: float
    notes: dict[str, Any]
    calibration: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)  # stream -> rows appended
    keys: dict[str, frozenset[str]] = field(default_factory=dict)  # stream -> keys it records
    buffers: dict[str, list[np.ndarray]] = field(default_factory=dict)  # key -> pending rows
    written: dict[str, int] = field(default_factory=dict)  # key -> rows handed to storage
    where: str = ""  # "<store>: episode <index>", for errors


class StoreWriter:
    """Open-or-create a store and append episodes. One writer per store at a time.

    ``schema`` is required to create a store; for an existing store it may add new keys
    (earlier episodes then simply lack them) but may not change existing ones.

    A full disk raises StoreFullError (committed episodes stay intact, the open episode's
    frames are deleted when it is discarded); ``begin_episode`` refuses to start while the
    filesystem has less than ``min_free_bytes`` free.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: StoreSchema | None = None,
        *,
        durable: bool = True,
        allow_nonfinite: bool = False,
        image_batch_rows: int = 16,
        min_free_bytes: int = 0,
        shard_frames: int = layout.SHARD_FRAMES,
    ) -> None:
        if layout.is_remote(path):
            raise StoreError(f"{path}: writing needs a local path; copy the store afterwards")
        self.path = layout.local_path(path)
        self.durable = durable
        self.allow_nonfinite = allow_nonfinite
        self.image_batch_rows = image_batch_rows
        self.min_free_bytes = min_free_bytes
        self.num_episodes = 0
        self.shard_frames = shard_frames  # for image arrays this writer creates
        self._episode: _OpenEpisode | None = None
        self._closed = False
        self._lock_cm = None
        creating = not layout.is_store(self.path)
        if creating:
            if schema is None:
                raise StoreError(f"{self.path}: no store here; a schema is needed to create one")
            if not layout.is_empty_or_unfinished_store(self.path):
                raise StoreError(f"{self.path}: exists, is not empty and is not a store")
            self.path.mkdir(parents=True, exist_ok=True)
        self._acquire_writer_lock()
        try:
            self._store = zarr.storage.LocalStore(self.path)
            if creating:
                self._root = self._create(schema)
                self.recovery = RecoveryReport(path=str(self.path))
            else:
                self.recovery = recover_locked(self.path)
                if self.recovery.changed:
                    log.warning("%s", self.recovery.message())
                self._root = layout.open_root(self._store, str(self.path), mode="r+")
                _, self.schema = layout.read_schema(self._root, str(self.path))
                if schema is not None:
                    self._extend_schema(schema)
            self._load_state()
            layout.keep_reserve(self.path)
        except BaseException:
            self._release_writer_lock()
            raise
        self._errors: list[BaseException] = []
        self._jobs: queue.Queue[_Job | None] = queue.Queue(_QUEUE_BATCHES)
        self._worker = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------------ lifecycle
    def _acquire_writer_lock(self) -> None:
        self._lock_cm = layout.file_lock(
            self.path / layout.WRITER_LOCK, blocking=False, what="the writer lock"
        )
        fd = self._lock_cm.__enter__()
        os.ftruncate(fd, 0)
        with contextlib.suppress(OSError):  # informational only; a full disk must not stop us
            os.pwrite(fd, str(os.getpid()).encode(), 0)

    def _release_writer_lock(self) -> None:
        if self._lock_cm is not None:
            self._lock_cm.__exit__(None, None, None)
            self._lock_cm = None

    def _create(self, schema: StoreSchema) -> zarr.Group:
        for leftover in self.path.iterdir():  # an interrupted creation: metadata only
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.name not in (layout.WRITER_LOCK, layout.META_LOCK):
                leftover.unlink()
        root = zarr.open_group(self._store, mode="a")
        root.require_group(layout.DATA_GROUP)
        root.require_group(layout.META_GROUP)
        for stream in schema.streams:
            layout.create_ends_array(root, stream)
        layout.create_text_array(root, layout.EPISODE_INFO)
        layout.create_text_array(root, layout.CURATION)
        for key, spec in schema.keys.items():
            layout.create_key_array(root, key, spec, 0, shard_frames=self.shard_frames)
        # The root attributes are written last: until then the directory is not a store.
        root.attrs[layout.ROOT_ATTR] = {
            "schema_version": SCHEMA_VERSION,
            "schema": schema.to_json(),
            "created_s": time.time(),
        }
        self.schema = schema
        return root

    def _extend_schema(self, schema: StoreSchema) -> None:
        problems = [p for p in self.schema.compatible_with(schema) if "not in the store" not in p]
        if problems:
            raise StoreInputError(
                f"{self.path}: schema conflicts with the store: " + "; ".join(problems)
            )
        new = {k: v for k, v in schema.keys.items() if k not in self.schema.keys}
        if not new:
            return
        merged = StoreSchema(
            keys={**self.schema.keys, **new},
            stream_rates_hz={**self.schema.stream_rates_hz, **schema.stream_rates_hz},
        )
        n = self._committed_episodes()
        for stream in merged.streams:
            if stream not in self.schema.streams:
                array = layout.create_ends_array(self._root, stream)
                if n:  # earlier episodes have no rows in the new stream
                    array.resize((n,))
                    array[:] = np.zeros(n, dtype=np.int64)
        for key, spec in new.items():
            rows = self._committed_rows(spec.stream)
            layout.create_key_array(self._root, key, spec, rows, shard_frames=self.shard_frames)
        header = dict(self._root.attrs[layout.ROOT_ATTR])
        header["schema"] = merged.to_json()
        if self.shard_frames > 1 and any(spec.is_image for spec in new.values()):
            header["schema_version"] = SCHEMA_VERSION  # now holds sharded arrays
        self._root.attrs[layout.ROOT_ATTR] = header
        self.schema = merged
        log.info("%s: added keys %s to the schema", self.path, ", ".join(new))

    def _committed_episodes(self) -> int:
        ends = np.asarray(self._root[layout.EPISODE_ENDS][:])
        return layout.committed_count(ends)

    def _committed_rows(self, stream: str) -> int:
        ends = np.asarray(self._root[layout.ends_path(stream)][:])
        n = self._committed_episodes()
        return int(ends[n - 1]) if n else 0

    def _load_state(self) -> None:
        self._arrays = {k: self._root[layout.data_path(k)] for k in self.schema.keys}
        self._frames = {
            k: frame_files(self.path, k, spec, self._arrays[k])
            for k, spec in self.schema.keys.items()
            if spec.is_image
        }
        self._image_keys = list(self._frames)
        self._image_keys_of = {
            s: [k for k in self._frames if self.schema.keys[k].stream == s]
            for s in self.schema.streams
        }
        self._ends = {s: self._root[layout.ends_path(s)] for s in self.schema.streams}
        self._info = self._root[layout.EPISODE_INFO]
        self._curation = self._root[layout.CURATION]
        self.num_episodes = self._committed_episodes()
        self._base_rows = {s: self._committed_rows(s) for s in self.schema.streams}

    def close(self) -> None:
        """Finish pending writes, drop an open episode (logged), trim, release the lock."""
        if self._closed:
            return
        try:
            if self._episode is not None:
                log.warning(
                    "%s: episode %d was not committed and is discarded at close",
                    self.path,
                    self._episode.index,
                )
                self.discard()
            self._drain()
        finally:
            self._jobs.put(None)
            self._worker.join(timeout=30)
            self._closed = True
            try:
                recover_locked(self.path, remove_partial_files=False)  # trim spare capacity
            except StoreFullError as exc:  # cosmetic trimming; never hide the original error
                log.warning("%s", exc)
            finally:
                self._release_writer_lock()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------- episodes
    @property
    def in_episode(self) -> bool:
        return self._episode is not None

    def begin_episode(
        self,
        *,
        source: Source | str,
        task: str,
        operator: str = "",
        notes: Mapping[str, Any] | None = None,
        calibration: Mapping[str, Any] | None = None,
        start_time_s: float | None = None,
    ) -> int:
        """Start recording an episode; returns the index it will have once committed."""
        self._check_open()
        if self._episode is not None:
            raise StoreError(
                f"{self.path}: episode {self._episode.index} is still open; "
                "commit or discard it first"
            )
        try:
            source = Source(source)
        except ValueError as exc:
            raise StoreInputError(
                f"unknown source {source!r} (known: {', '.join(s.value for s in Source)})"
            ) from exc
        free = shutil.disk_usage(self.path).free
        if free < self.min_free_bytes:
            raise StoreFullError(
                f"{self.path}: only {free / 1e6:.1f} MB free on the store's filesystem, below "
                f"the margin of {self.min_free_bytes / 1e6:.1f} MB: episode not started. The "
                f"{self.num_episodes} committed episodes are intact; free space (or record to "
                "another disk), or lower the margin"
            )
        index = self.num_episodes
        self._episode = _OpenEpisode(
            index=index,
            source=source,
            task=task,
            operator=operator,
            start_time_s=time.time() if start_time_s is None else float(start_time_s),
            notes=dict(notes or {}),
            calibration=dict(calibration or {}),
            where=f"{self.path}: episode {index}",
        )
        with self._disk_full_as_error(f"starting episode {index}"):
            layout.update_meta_attrs(
                self._store,
                self.path,
                {
                    layout.PENDING_ATTR: {
                        "index": index,
                        "source": str(source),
                        "task": task,
                        "start_time_s": self._episode.start_time_s,
                        "pid": os.getpid(),
                    }
                },
            )
        return index

    def append(self, step: Mapping[str, Any], *, stream: str = MAIN_STREAM) -> None:
        """Append one row to ``stream``: a value per key, shaped like the key's rows."""
        self.append_batch({k: np.asarray(v)[None] for k, v in step.items()}, stream=stream)

    def append_batch(self, rows: Mapping[str, Any], *, stream: str = MAIN_STREAM) -> None:
        """Append n rows to ``stream``: arrays (n, *shape), the same n for every key."""
        self._check_open()
        self._raise_worker_error()
        ep = self._episode
        if ep is None:
            raise StoreError(f"{self.path}: append outside an episode; call begin_episode first")
        checked = check_rows(
            self.schema,
            rows,
            stream,
            expected_keys=ep.keys.get(stream),
            where=ep.where,
            allow_nonfinite=self.allow_nonfinite,
        )
        if stream not in ep.keys:
            ep.keys[stream] = frozenset(checked)
        n = len(next(iter(checked.values())))
        for key, value in checked.items():
            ep.buffers.setdefault(key, []).append(value)
        ep.rows[stream] = ep.rows.get(stream, 0) + n
        self._flush_images(ep, stream, force=False)

    def commit(
        self,
        *,
        success: bool,
        notes: Mapping[str, Any] | None = None,
        source: Source | str | None = None,
    ) -> int:
        """Make the open episode durable and visible to readers; returns its index.

        ``source`` overrides the one given at ``begin_episode`` (a policy rollout turns out to
        be an ``intervention`` episode only once the operator took over)."""
        self._check_open()
        ep = self._require_episode()
        if source is not None:
            ep.source = Source(source)
        if ep.rows.get(MAIN_STREAM, 0) == 0:
            raise StoreInputError(
                f"{self.path}: episode {ep.index} has no {MAIN_STREAM!r} rows; discard it instead"
            )
        with self._disk_full_as_error(f"committing episode {ep.index}"):
            return self._commit(ep, success=success, notes=notes)

    def _commit(self, ep: _OpenEpisode, *, success: bool, notes: Mapping[str, Any] | None) -> int:
        self._flush_images(ep, None, force=True)
        self._drain()
        checksums = self._write_lowdim_and_fill(ep)
        for frames in self._frames.values():
            frames.flush()  # the partial tail shards, once per commit
        info = EpisodeInfo(
            index=ep.index,
            source=ep.source,
            task=ep.task,
            success=bool(success),
            operator=ep.operator,
            start_time_s=ep.start_time_s,
            end_time_s=time.time(),
            notes={**ep.notes, **dict(notes or {})},
            calibration=ep.calibration,
            keys=tuple(sorted(k for keys in ep.keys.values() for k in keys)),
            lengths={s: ep.rows.get(s, 0) for s in self.schema.streams},
            checksums=checksums,
        )
        i = ep.index
        with layout.file_lock(self.path / layout.META_LOCK, blocking=True, what="the meta lock"):
            for array, value in (
                (self._info, info.to_json()),
                (self._curation, Curation().to_json()),
            ):
                array.resize((i + 1,))
                array[i] = value
            for stream in self.schema.streams[1:]:
                self._ends[stream].resize((i + 1,))
                self._ends[stream][i] = self._base_rows[stream] + ep.rows.get(stream, 0)
            if self.durable:
                sync_filesystem(self.path)
            # The commit point.
            ends = self._ends[MAIN_STREAM]
            ends.resize((i + 1,))
            ends[i] = self._base_rows[MAIN_STREAM] + ep.rows[MAIN_STREAM]
            if self.durable:
                sync_filesystem(self.path)
            layout.update_meta_attrs(self._store, None, {layout.PENDING_ATTR: None})
        for stream in self.schema.streams:
            self._base_rows[stream] += ep.rows.get(stream, 0)
        self.num_episodes = i + 1
        self._episode = None
        return i

    def discard(self) -> None:
        """Drop the open episode and delete its frames (first: this works on a full disk)."""
        self._require_episode()
        self._drain(raise_errors=False)
        self._episode = None
        free_uncommitted(self.path, remove_partial_files=False)
        try:
            layout.update_meta_attrs(self._store, self.path, {layout.PENDING_ATTR: None})
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            if layout.release_reserve(self.path):  # room for the few bytes of metadata
                layout.update_meta_attrs(self._store, self.path, {layout.PENDING_ATTR: None})
            else:  # the next writer or `rl store recover` clears it
                log.warning("%s: disk full, the discarded episode stays marked pending", self.path)

    @contextlib.contextmanager
    def _disk_full_as_error(self, doing: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise self._disk_full(doing) from exc

    def _disk_full(self, doing: str) -> StoreFullError:
        free = shutil.disk_usage(self.path).free
        return StoreFullError(
            f"{self.path}: the disk is full ({free / 1e6:.2f} MB free) while {doing}. Safe: "
            f"the {self.num_episodes} committed episodes are intact; the open episode is not "
            "kept. To go on: free space on this filesystem (or record to another disk), then "
            f"run `rl store recover {self.path}`, which deletes the uncommitted data first"
        )

    # ----------------------------------------------------------------------- internals
    def _require_episode(self) -> _OpenEpisode:
        if self._episode is None:
            raise StoreError(f"{self.path}: no open episode")
        return self._episode

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: writer is closed")

    def _flush_images(self, ep: _OpenEpisode, stream: str | None, *, force: bool) -> None:
        """Hand buffered image rows to the background writer in batches."""
        for key in self._image_keys if stream is None else self._image_keys_of[stream]:
            parts = ep.buffers.get(key)
            if not parts:
                continue
            spec = self.schema.keys[key]
            pending = ep.rows[spec.stream] - ep.written.get(key, 0)  # a stream's keys go together
            if pending < self.image_batch_rows and not force:
                continue
            # the rows as views of what append copied: concatenating them would copy every
            # frame a second time (the largest part of what recording cost beyond encoding)
            batch = [row for part in parts for row in part]
            start = self._base_rows[spec.stream] + ep.written.get(key, 0)
            ep.buffers[key] = []
            ep.written[key] = ep.written.get(key, 0) + len(batch)
            self._put_job((key, start, batch))

    def _put_job(self, job: _Job) -> None:
        while True:
            self._raise_worker_error()
            try:
                self._jobs.put(job, timeout=0.5)
                return
            except queue.Full:
                continue

    def _write_loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                key, start, batch = job
                self._write_rows(key, start, batch)
            except BaseException as exc:  # surfaced on the caller's next call
                self._errors.append(exc)
            finally:
                self._jobs.task_done()

    def _write_rows(self, key: str, start: int, batch: np.ndarray | list[np.ndarray]) -> None:
        array = self._arrays[key]
        stop = start + len(batch)
        spec = self.schema.keys[key]
        if array.shape[0] < stop:
            minimum = 64 if spec.is_image else spec.rows_per_chunk
            step = max(stop - array.shape[0], array.shape[0] // 2, minimum)
            array.resize((array.shape[0] + step, *array.shape[1:]))
        frames = self._frames.get(key)
        if frames is None:
            array[start:stop] = batch
            return
        for offset, frame in enumerate(batch):
            frames.write(start + offset, frame)

    def _drain(self, *, raise_errors: bool = True) -> None:
        self._jobs.join()
        if raise_errors:
            self._raise_worker_error()
        else:
            self._errors.clear()

    def _raise_worker_error(self) -> None:
        if self._errors:
            exc = self._errors.pop(0)
            self._errors.clear()
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                doing = (
                    f"writing episode {self._episode.index}"
                    if self._episode is not None
                    else "writing data"
                )
                raise self._disk_full(doing) from exc
            raise StoreError(f"{self.path}: writing data failed: {exc}") from exc

    def _write_lowdim_and_fill(self, ep: _OpenEpisode) -> dict[str, str]:
        """Write low-dim rows; fill keys this episode lacks; checksum lossless keys."""
        checksums = {}
        for key, spec in self.schema.keys.items():
            n = ep.rows.get(spec.stream, 0)
            start = self._base_rows[spec.stream]
            recorded = key in ep.keys.get(spec.stream, frozenset())
            if spec.is_image:
                if not recorded and n:
                    # rows never written read as fill; clear any stale capacity rows
                    self._write_rows(key, start, np.zeros((n, *spec.shape), dtype=spec.dtype))
                continue
            if recorded:
                parts = ep.buffers.get(key, [])
                rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
                checksums[key] = hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()
            else:
                rows = np.full((n, *spec.shape), np.nan if spec.is_float else 0, dtype=spec.dtype)
            if n:
                self._write_rows(key, start, rows)
            ep.buffers[key] = []
        return checksums
