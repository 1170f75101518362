"""Adding per-step arrays to episodes already committed (hand keypoints, motion tracks...).

Labelling runs offline over recorded episodes and produces new keys for some of them. The
store records, per episode, which keys it holds (``EpisodeInfo.keys``); an annotation writes
the rows first and claims them last, so a process killed at any instant leaves every
episode either claiming a complete key or not claiming it at all:

1. take the writer lock (a live recorder keeps it: annotation refuses rather than waits)
   and bring the store to its last commit (as a writer opening it would);
2. a new key gets its array, created marked ``added_by: annotate``, and only then is it
   declared in the schema; an array left undeclared by a crash between the two is removed
   by recovery (the next writer, annotation or ``rl store recover``);
3. an episode whose key is replaced (``overwrite``) first stops claiming it;
4. the rows are written (zarr replaces each chunk file atomically; neighbours' rows in a
   shared chunk are rewritten unchanged), the filesystem synced;
5. the episodes' records gain the key and its checksum (one small metadata write per
   4096 episodes), in batches, so a long labelling run keeps its progress.

Episodes never annotated read the key's fill value (NaN, or 0 for integer keys) and do
not list it: reader, sampler, normalization and validation all go by that list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from robot_learning.store import layout
from robot_learning.store.durability import sync_filesystem
from robot_learning.store.episodes import EpisodeInfo
from robot_learning.store.errors import StoreError, StoreInputError
from robot_learning.store.recovery import recover_locked
from robot_learning.store.row_checks import check_value
from robot_learning.store.schema import MAIN_STREAM, KeySpec, StoreSchema

log = logging.getLogger(__name__)

CLAIM_BATCH = 64  # episodes annotated between two metadata writes


@dataclass
class AnnotationReport:
    """What an annotation changed; ``message()`` is what the user is told."""

    path: str
    declared: list[str] = field(default_factory=list)  # keys new to the schema
    annotated: dict[int, list[str]] = field(default_factory=dict)  # episode -> keys written
    replaced: dict[int, list[str]] = field(default_factory=dict)  # ... of which overwritten

    def message(self) -> str:
        keys = sorted({k for ks in self.annotated.values() for k in ks})
        parts = [
            f"{self.path}: annotated {len(self.annotated)} episodes with {', '.join(keys)}"
            if keys
            else f"{self.path}: no episode annotated"
        ]
        if self.declared:
            parts.append(f"new keys {', '.join(self.declared)}")
        if self.replaced:
            parts.append(f"replaced in {len(self.replaced)} episodes")
        return "; ".join(parts)


def annotate_episodes(
    store_path: str | os.PathLike[str],
    specs: Mapping[str, KeySpec],
    rows: Iterable[tuple[int, Mapping[str, np.ndarray]]],
    *,
    overwrite: bool = False,
    allow_nonfinite: bool = False,
) -> AnnotationReport:
    """Write per-step ``rows`` (episode index, {key: (T, *shape) array}) into committed
    episodes of a local store; T is the episode's row count in the key's stream.

    ``specs`` declares every key the rows may carry (low-dim keys, in existing streams); a
    key already in the store must be declared as it is stored. An item may carry any
    subset of them. An episode already holding a key is an error unless ``overwrite``.
    ``rows`` may be a generator (labelling episode by episode): episodes finished before
    it raises stay annotated. Raises StoreLockedError while a recorder writes the store.
    """
    if layout.is_remote(store_path):
        raise StoreError(f"{store_path}: annotation needs a local store; annotate, then copy")
    root_dir = layout.local_path(store_path)
    store = zarr.storage.LocalStore(root_dir)
    layout.open_root(layout.open_zarr_store(root_dir, read_only=True), str(root_dir))
    try:
        lock = layout.file_lock(
            root_dir / layout.WRITER_LOCK, blocking=False, what="the writer lock"
        )
        lock.__enter__()
    except StoreError as exc:
        raise type(exc)(
            f"{exc}: a recorder is writing this store; annotate once it has closed"
        ) from exc
    try:
        recovery = recover_locked(root_dir)
        if recovery.changed:
            log.warning("%s", recovery.message())
        session = _Annotation(root_dir, store, dict(specs), overwrite, allow_nonfinite)
        return session.run(rows)
    finally:
        lock.__exit__(None, None, None)


class _Annotation:
    """One annotation run, holding the writer lock."""

    def __init__(
        self,
        root_dir: Path,
        store: zarr.abc.store.Store,
        specs: dict[str, KeySpec],
        overwrite: bool,
        allow_nonfinite: bool,
    ) -> None:
        self.root_dir, self.store, self.where = root_dir, store, str(root_dir)
        self.overwrite, self.allow_nonfinite = overwrite, allow_nonfinite
        self.root = layout.open_root(store, self.where, mode="r+")
        _, self.schema = layout.read_schema(self.root, self.where)
        self.report = AnnotationReport(path=self.where)
        self._check_specs(specs)
        self.specs = specs
        self._declare(specs)
        ends = np.asarray(self.root[layout.EPISODE_ENDS][:])
        self.num_episodes = layout.committed_count(ends)
        self.stream_ends = {
            s: np.asarray(self.root[layout.ends_path(s)][: self.num_episodes])
            for s in self.schema.streams
        }
        self.info_array = self.root[layout.EPISODE_INFO]
        self.infos = [
            EpisodeInfo.from_json(str(t)) for t in np.asarray(self.info_array[: self.num_episodes])
        ]
        self.arrays = {k: self.root[layout.data_path(k)] for k in specs}
        self.pending: dict[int, EpisodeInfo] = {}  # written, not yet claimed

    def _check_specs(self, specs: Mapping[str, KeySpec]) -> None:
        if not specs:
            raise StoreInputError(f"{self.where}: no keys to annotate")
        # the schema's own key-name rules (it needs one main-stream key to be built)
        StoreSchema(keys={k: dataclasses.replace(s, stream=MAIN_STREAM) for k, s in specs.items()})
        for key, spec in specs.items():
            if spec.is_image:
                raise StoreInputError(
                    f"{self.where}: key {key!r} is an image key ({spec.codec}); annotations "
                    "are low-dim arrays (images are recorded by StoreWriter)"
                )
            if spec.stream not in self.schema.streams:
                raise StoreInputError(
                    f"{self.where}: key {key!r} is in stream {spec.stream!r}, which the store "
                    f"does not have (streams: {', '.join(self.schema.streams)})"
                )
            stored = self.schema.keys.get(key)
            if stored is not None and (stored.shape, stored.dtype, stored.stream) != (
                spec.shape,
                spec.dtype,
                spec.stream,
            ):
                raise StoreInputError(
                    f"{self.where}: key {key!r} is stored as {stored.dtype} {stored.shape} in "
                    f"stream {stored.stream!r}, declared as {spec.dtype} {spec.shape} in "
                    f"stream {spec.stream!r}"
                )

    def _declare(self, specs: Mapping[str, KeySpec]) -> None:
        """Create arrays for new keys (marked), then declare them in the schema."""
        new = {k: s for k, s in specs.items() if k not in self.schema.keys}
        if not new:
            return
        ends = np.asarray(self.root[layout.EPISODE_ENDS][:])
        n = layout.committed_count(ends)
        data = self.root[layout.DATA_GROUP]
        for key, spec in new.items():
            if key in data:  # undeclared leftover that recovery did not own: not ours to keep
                raise StoreError(
                    f"{self.where}/{layout.data_path(key)}: an array not declared in the "
                    "schema is in the way; move it out of the store"
                )
            stream_ends = np.asarray(self.root[layout.ends_path(spec.stream)][:n])
            rows = int(stream_ends[-1]) if n else 0
            layout.create_key_array(self.root, key, spec, rows, added_by=layout.ADDED_BY_ANNOTATE)
        sync_filesystem(self.root_dir)
        header = dict(self.root.attrs[layout.ROOT_ATTR])
        merged = StoreSchema(
            keys={**self.schema.keys, **new}, stream_rates_hz=self.schema.stream_rates_hz
        )
        header["schema"] = merged.to_json()
        self.root.attrs[layout.ROOT_ATTR] = header  # the declaration: one atomic file
        self.schema = merged
        self.report.declared = sorted(new)

    def run(self, rows: Iterable[tuple[int, Mapping[str, np.ndarray]]]) -> AnnotationReport:
        try:
            for episode, values in rows:
                self._write_episode(int(episode), values)
                if len(self.pending) >= CLAIM_BATCH:
                    self._claim()
        finally:
            self._claim()
        return self.report

    def _write_episode(self, episode: int, values: Mapping[str, np.ndarray]) -> None:
        where = f"{self.where}: episode {episode}"
        if not 0 <= episode < self.num_episodes:
            raise StoreInputError(
                f"{where}: no such committed episode ({self.num_episodes} committed)"
            )
        if episode in self.pending or episode in self.report.annotated:
            raise StoreInputError(f"{where}: annotated twice in one run")
        if not values:
            raise StoreInputError(f"{where}: no keys given")
        unknown = sorted(set(values) - set(self.specs))
        if unknown:
            raise StoreInputError(
                f"{where}: keys {unknown} not declared in specs (declared: {', '.join(self.specs)})"
            )
        info = self.infos[episode]
        held = sorted(set(values) & set(info.keys))
        if held and not self.overwrite:
            raise StoreInputError(
                f"{where} already has {held}; pass overwrite=True to replace them"
            )
        checked = {}
        for key, value in values.items():
            spec = self.specs[key]
            start, stop = self._rows(spec.stream, episode)
            array = np.asarray(value)
            if len(array) != stop - start:
                raise StoreInputError(
                    f"{where}, key {key!r}: {len(array)} rows, the episode "
                    f"has {stop - start} in stream {spec.stream!r}"
                )
            checked[key] = check_value(array, spec, f"{where}, key {key!r}", self.allow_nonfinite)
        if held:  # stop claiming what is about to be rewritten
            info = dataclasses.replace(
                info,
                keys=tuple(k for k in info.keys if k not in held),
                checksums={k: v for k, v in info.checksums.items() if k not in held},
            )
            self._write_infos({episode: info})
            self.report.replaced[episode] = held
        for key, value in checked.items():
            start, stop = self._rows(self.specs[key].stream, episode)
            if stop > start:
                self.arrays[key][start:stop] = value
        checksums = {
            k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
            for k, v in checked.items()
        }
        self.pending[episode] = dataclasses.replace(
            info,
            keys=tuple(sorted({*info.keys, *checked})),
            checksums={**info.checksums, **checksums},
        )
        self.report.annotated[episode] = sorted(checked)

    def _rows(self, stream: str, episode: int) -> tuple[int, int]:
        ends = self.stream_ends[stream]
        return (int(ends[episode - 1]) if episode else 0), int(ends[episode])

    def _claim(self) -> None:
        if not self.pending:
            return
        sync_filesystem(self.root_dir)  # rows on disk before any record claims them
        self._write_infos(self.pending)
        self.pending = {}

    def _write_infos(self, infos: Mapping[int, EpisodeInfo]) -> None:
        with layout.file_lock(
            self.root_dir / layout.META_LOCK, blocking=True, what="the meta lock"
        ):
            first, last = min(infos), max(infos) + 1
            texts = np.asarray(self.info_array[first:last]).copy()
            for episode, info in infos.items():
                texts[episode - first] = info.to_json()
                self.infos[episode] = info
            self.info_array[first:last] = texts
        sync_filesystem(self.root_dir)
