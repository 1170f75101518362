"""Read-only access to a store: committed episodes only, safe beside a live writer."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from robot_learning.store import layout
from robot_learning.store.episodes import Curation, Episode, EpisodeInfo
from robot_learning.store.errors import StoreCorruptError, StoreError, StoreInputError
from robot_learning.store.frame_files import Frames, frame_files, is_sharded
from robot_learning.store.schema import MAIN_STREAM, KeySpec, Source


class StoreReader:
    """A snapshot of the committed episodes; ``refresh()`` picks up newer commits.

    Works on local paths and on fsspec URLs (s3://, gs://, http://). Safe to open while a
    writer appends: it reads only below the commit point (``meta/episode_ends``).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, remote_cache_bytes: int | None = None
    ) -> None:
        """``remote_cache_bytes``: on a remote store, the budget for whole image shards read
        ahead and kept in memory (default ``remote.DEFAULT_CACHE_BYTES``; 0: fetch frames
        by range only). Ignored for local stores, which the page cache serves."""
        self.path = str(path)
        self.remote_cache_bytes = remote_cache_bytes
        self.shard_cache: Any = None  # remote.ShardCache, made at the first remote frame read
        self._store = layout.open_zarr_store(path, read_only=True)
        self._local_root = None if layout.is_remote(path) else layout.local_path(path)
        self._arrays: dict[str, zarr.Array] = {}
        self.refresh()

    # ----------------------------------------------------------------------------- loading
    def refresh(self) -> None:
        """Re-read the commit point and metadata (cheap: a few small files)."""
        self._root = layout.open_root(self._store, self.path)
        self.schema_version, self.schema = layout.read_schema(self._root, self.path)
        self._arrays = {}
        self._frames: dict[str, Any] = {}  # key -> its frame files (or remote shards)
        self.shard_cache = None  # a newer snapshot may see re-uploaded shards
        ends = self._read_meta(layout.EPISODE_ENDS)
        n = layout.committed_count(ends)
        self._stream_ends = {MAIN_STREAM: ends[:n].astype(np.int64)}
        for stream in self.schema.streams[1:]:
            stream_ends = self._read_meta(layout.ends_path(stream))
            if len(stream_ends) < n:
                raise StoreCorruptError(
                    f"{self.path}/{layout.ends_path(stream)}: {len(stream_ends)} entries "
                    f"for {n} committed episodes"
                )
            self._stream_ends[stream] = stream_ends[:n].astype(np.int64)
        infos = self._read_meta(layout.EPISODE_INFO)
        curation = self._read_meta(layout.CURATION)
        if len(infos) < n or len(curation) < n:
            raise StoreCorruptError(
                f"{self.path}/meta: episode metadata has {min(len(infos), len(curation))} "
                f"entries for {n} committed episodes"
            )
        self._episodes = []
        for i in range(n):
            try:
                info = EpisodeInfo.from_json(str(infos[i]))
                cur = Curation.from_json(str(curation[i]))
            except (ValueError, TypeError, KeyError) as exc:
                raise StoreCorruptError(
                    f"{self.path}/{layout.EPISODE_INFO}: episode {i} metadata unreadable ({exc})"
                ) from exc
            rows = {s: self._row_range(s, i) for s in self.schema.streams}
            self._episodes.append(Episode(info=info, curation=cur, rows=rows))

    def _read_meta(self, path: str) -> np.ndarray:
        array = layout.open_array(self._root, path, self.path)
        try:
            return np.asarray(array[:])
        except Exception as exc:  # a corrupt chunk: name the file, keep going nowhere
            raise StoreCorruptError(f"{self.path}/{path}: unreadable ({exc})") from exc

    def _row_range(self, stream: str, episode: int) -> tuple[int, int]:
        ends = self._stream_ends[stream]
        start = int(ends[episode - 1]) if episode > 0 else 0
        return start, int(ends[episode])

    # ------------------------------------------------------------------------- episodes
    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_steps(self) -> int:
        """Committed rows of the main stream."""
        ends = self._stream_ends[MAIN_STREAM]
        return int(ends[-1]) if len(ends) else 0

    @property
    def episode_ends(self) -> np.ndarray:
        return self._stream_ends[MAIN_STREAM].copy()

    def stream_ends(self, stream: str) -> np.ndarray:
        return self._stream_ends[stream].copy()

    @property
    def episodes(self) -> list[Episode]:
        return list(self._episodes)

    def episode(self, index: int) -> Episode:
        if not 0 <= index < len(self._episodes):
            raise IndexError(f"{self.path}: no episode {index} ({len(self._episodes)} committed)")
        return self._episodes[index]

    def select(
        self,
        *,
        source: Source | str | Iterable[Source | str] | None = None,
        task: str | Iterable[str] | None = None,
        success: bool | None = None,
        include_excluded: bool = False,
    ) -> list[int]:
        """Indices of committed episodes matching every given filter."""
        sources = _as_set(source, Source)
        tasks = _as_set(task, str)
        chosen = []
        for ep in self._episodes:
            if ep.excluded and not include_excluded:
                continue
            if sources is not None and ep.info.source not in sources:
                continue
            if tasks is not None and ep.info.task not in tasks:
                continue
            if success is not None and ep.info.success != success:
                continue
            chosen.append(ep.index)
        return chosen

    # ----------------------------------------------------------------------------- data
    def spec(self, key: str) -> KeySpec:
        if key not in self.schema.keys:
            raise KeyError(f"{self.path}: no key {key!r} (keys: {', '.join(self.schema.keys)})")
        return self.schema.keys[key]

    def array(self, key: str) -> zarr.Array:
        self.spec(key)
        if key not in self._arrays:
            self._arrays[key] = layout.open_array(self._root, layout.data_path(key), self.path)
        return self._arrays[key]

    def read_rows(self, key: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of ``key`` (committed rows only)."""
        spec = self.spec(key)
        committed = int(self._stream_ends[spec.stream][-1]) if self._episodes else 0
        if not 0 <= start <= stop <= committed:
            raise IndexError(
                f"{self.path}: rows [{start}, {stop}) of {key!r} beyond the "
                f"{committed} committed rows"
            )
        try:
            return np.asarray(self.array(key)[start:stop])
        except StoreError:
            raise
        except Exception as exc:  # a damaged chunk: zarr/numcodecs name no file
            raise StoreCorruptError(
                f"{self.path}/{layout.data_path(key)}: rows [{start}, {stop}) of {key!r} "
                f"(episode {self.episode_of_row(start, spec.stream)}) unreadable "
                f"({type(exc).__name__}: {exc})"
            ) from exc

    def read_episode(self, index: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Every (or the given) key of one episode, decoded, time first."""
        ep = self.episode(index)
        out = {}
        for key in keys if keys is not None else ep.info.keys:
            start, stop = ep.rows[self.spec(key).stream]
            out[key] = self.read_rows(key, start, stop)
        return out

    def read_frames(
        self, key: str, rows: Sequence[int], out: np.ndarray | None = None
    ) -> np.ndarray:
        """Image rows by index, decoded into ``out`` (len(rows), *shape) when given.

        The training hot path: on local stores each frame is read from its file (sharded or
        not) and decoded straight into its slot of ``out`` (no intermediate copies). If the
        array was swapped meanwhile (``rl store migrate`` in place), the batch is read again
        from the new layout.
        """
        spec = self.spec(key)
        if out is None:
            out = np.empty((len(rows), *spec.shape), dtype=spec.dtype)
        if self._local_root is None:
            return self._read_remote_frames(key, rows, out)
        for _attempt in range(3):
            frames = self.frame_files(key)
            try:
                for i, row in enumerate(rows):
                    frames.read(int(row), out=out[i], episode_of=self.episode_of_row)
            except StoreCorruptError:
                if not frames.replaced():
                    raise
            if not frames.replaced():
                return out
            self._frames.pop(key)  # the layout changed under us: reopen and read again
            self._arrays.pop(key, None)
        raise StoreCorruptError(f"{self.path}/{layout.data_path(key)}: keeps being replaced")

    def _read_remote_frames(self, key: str, rows: Sequence[int], out: np.ndarray) -> np.ndarray:
        array = self.array(key)
        if not is_sharded(array):  # a file per frame: one zarr read each
            for i, row in enumerate(rows):
                out[i] = np.asarray(array[int(row)])
            return out
        frames = self._frames.get(key)
        if frames is None:
            from robot_learning.store.remote import RemoteShards  # fsspec: an optional extra

            if self.shard_cache is None:
                from robot_learning.store.remote import DEFAULT_CACHE_BYTES, ShardCache

                budget = self.remote_cache_bytes
                self.shard_cache = ShardCache(DEFAULT_CACHE_BYTES if budget is None else budget)
            frames = self._frames[key] = RemoteShards(
                self.path, key, self.spec(key), array, self.shard_cache
            )
        return frames.read([int(r) for r in rows], out)

    def frame_files(self, key: str) -> Frames:
        """The files behind an image key of a local store (sharded or a file per frame)."""
        if self._local_root is None:
            raise StoreError(f"{self.path}: frame files are only reachable in local stores")
        frames = self._frames.get(key)
        if frames is None:
            spec = self.spec(key)
            frames = self._frames[key] = frame_files(self._local_root, key, spec, self.array(key))
        return frames

    def episode_of_row(self, row: int, stream: str = MAIN_STREAM) -> int:
        return int(np.searchsorted(self._stream_ends[stream], row, side="right"))

    # ---------------------------------------------------------------------- summaries
    def fingerprint(self, episodes: Sequence[int] | None = None) -> str:
        """Content identity of a selection: schema + episode metadata (incl. checksums).

        Checkpoints record it, so a model can name exactly the data it was trained on.
        """
        digest = hashlib.sha256()
        digest.update(repr(sorted(self.schema.to_json()["keys"].items())).encode())
        for i in episodes if episodes is not None else range(self.num_episodes):
            digest.update(self._episodes[i].info.to_json().encode())
        return digest.hexdigest()[:16]

    def meta_attrs(self) -> dict[str, Any]:
        """The meta group's attributes, read fresh (pending episode, normalization stats)."""
        return dict(layout.open_group(self._root, layout.META_GROUP, self.path).attrs)

    def size_on_disk(self) -> int | None:
        if self._local_root is None:
            return None
        return sum(p.stat().st_size for p in Path(self._local_root).rglob("*") if p.is_file())

    def summary(self) -> dict[str, Any]:
        """Counts, keys and sources: what ``rl store info --json`` prints."""
        by_source: dict[str, int] = {}
        by_task: dict[str, int] = {}
        for ep in self._episodes:
            by_source[str(ep.info.source)] = by_source.get(str(ep.info.source), 0) + 1
            by_task[ep.info.task] = by_task.get(ep.info.task, 0) + 1
        return {
            "path": self.path,
            "schema_version": self.schema_version,
            "episodes": self.num_episodes,
            "steps": self.num_steps,
            "excluded": sum(ep.excluded for ep in self._episodes),
            "successful": sum(ep.info.success for ep in self._episodes),
            "sources": by_source,
            "tasks": by_task,
            "streams": {
                s: {
                    "rows": int(self._stream_ends[s][-1]) if self._episodes else 0,
                    "rate_hz": self.schema.stream_rates_hz.get(s),
                }
                for s in self.schema.streams
            },
            "keys": {k: spec.to_json() for k, spec in self.schema.keys.items()},
            "size_bytes": self.size_on_disk(),
            "fingerprint": self.fingerprint(),
        }


def _as_set(value: Any, kind: type) -> set[Any] | None:
    if value is None:
        return None
    if isinstance(value, str | Source):
        value = [value]
    try:
        return {kind(v) for v in value}
    except ValueError as exc:
        raise StoreInputError(f"unknown {kind.__name__} in filter: {exc}") from exc
