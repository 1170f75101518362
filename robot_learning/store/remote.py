"""Stores in object storage (S3 or any fsspec filesystem): incremental upload, batched reads.

``upload(local, url)`` sends the committed episodes of a local store, and nothing else:
full shards (immutable once every frame in them is committed) and full low-dim chunks go
once; the tail shard and edge chunks are re-encoded from their committed rows only, and
array metadata says exactly the committed row count, so no uncommitted row ever leaves the
machine, even while a writer is recording. Order keeps the remote copy a valid store at every
instant: data, then episode records, then ``meta/episode_ends`` (the commit point), then the
root metadata. A manifest at the remote root lists the immutable files already sent, so an
interrupted upload resumes where it stopped; it is reset when the local store was rebuilt
(migrate, compact). Object writes are atomic per object (S3 PUT), like renames locally.

``RemoteShards`` reads frames of a sharded image key for ``StoreReader`` on a URL. Read-ahead
at shard granularity: while the image shards being read fit in the reader's ``ShardCache``
budget (estimated from the shards seen so far), a full shard (immutable once uploaded) is
fetched whole in one request the first time any of its frames is needed and kept, so later
samples from it decode from memory: each shard crosses the network once per worker. Object
stores are bound by requests, not bytes (one 1-4 MB GET costs about what a 30 kB range GET
does), so this is what lifts remote reads to near local ones. When the shards do not fit,
a whole shard would mostly be evicted before its other frames are drawn (random windows
over a large store), 100x the bytes for the same request count: then, as for the tail
shard (it grows with later uploads), the frames of a batch are fetched by range in one
concurrent ``cat_ranges`` call, neighbouring frames merged into one range.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import fsspec
import fsspec.utils
import numpy as np
import zarr
import zarr.storage
from tqdm import tqdm

from robot_learning.store import layout
from robot_learning.store.errors import StoreCorruptError, StoreError
from robot_learning.store.frame_files import (
    EMPTY_ENTRY,
    FrameCodec,
    ShardFiles,
    chunk_key_parts,
    encode_shard,
    frame_codecs,
    is_sharded,
    parse_index,
)
from robot_learning.store.reader import StoreReader
from robot_learning.store.schema import KeySpec

MANIFEST = ".upload-manifest.json"
_MERGE_GAP_BYTES = 1 << 16  # fetch the gap rather than start another request
_MERGE_MAX_BYTES = 8 << 20
DEFAULT_CACHE_BYTES = 512 << 20  # whole shards each reader (so each loader worker) keeps


@dataclass
class UploadReport:
    path: str
    url: str
    episodes: int = 0
    files_sent: int = 0
    bytes_sent: int = 0
    files_skipped: int = 0  # immutable files the remote already had
    seconds: float = 0.0

    def message(self) -> str:
        return (
            f"{self.url}: {self.episodes} committed episodes; sent {self.files_sent:,} files "
            f"({self.bytes_sent / 1e6:,.1f} MB), {self.files_skipped:,} already there "
            f"({self.seconds:.1f} s)"
        )


def upload(path: str | os.PathLike[str], url: str, *, progress: bool = False) -> UploadReport:
    """Send the committed episodes of the local store ``path`` to ``url`` (resumable)."""
    start = time.perf_counter()
    root_dir = layout.local_path(path)
    reader = StoreReader(root_dir)  # the snapshot: committed episodes at this instant
    fs, remote_root = fsspec.core.url_to_fs(url)
    report = UploadReport(path=str(root_dir), url=url, episodes=reader.num_episodes)
    for key, spec in reader.schema.keys.items():
        if spec.is_image and not is_sharded(reader.array(key)):
            raise StoreError(
                f"{root_dir}/{layout.data_path(key)}: a file per frame; run `rl store migrate` "
                "before uploading (object stores want few, large objects)"
            )
    identity = _identity(root_dir, reader)
    manifest = _load_manifest(fs, remote_root)
    if manifest.get("identity") != identity:
        manifest = {"identity": identity, "files": {}}
    sent: dict[str, int] = manifest["files"]

    def put(rel: str, data: bytes, *, immutable: bool) -> None:
        if immutable and rel in sent:
            report.files_skipped += 1
            return
        fs.pipe_file(f"{remote_root}/{rel}", data)
        report.files_sent += 1
        report.bytes_sent += len(data)
        if immutable:
            sent[rel] = len(data)

    rows = {
        s: int(reader.stream_ends(s)[-1]) if reader.num_episodes else 0
        for s in reader.schema.streams
    }
    n = reader.num_episodes
    arrays = [(layout.data_path(k), rows[s.stream], s) for k, s in reader.schema.keys.items()]
    meta = [(layout.EPISODE_INFO, n, None), (layout.CURATION, n, None)]
    meta += [(layout.ends_path(s), n, None) for s in reader.schema.streams[1:]]
    meta += [(layout.EPISODE_ENDS, n, None)]  # the commit point, last
    with tqdm(
        total=len(arrays) + len(meta), desc="upload", unit="array", disable=not progress
    ) as bar:
        for rel, count, spec in [*arrays, *meta]:
            if spec is not None and spec.is_image:
                _upload_frames(reader, rel.split("/", 1)[1], count, put)
            else:
                _upload_chunks(reader, rel, count, put)
            put(f"{rel}/zarr.json", _metadata_with_rows(root_dir / rel, count), immutable=False)
            bar.update()
    put(
        f"{layout.DATA_GROUP}/zarr.json",
        (root_dir / layout.DATA_GROUP / "zarr.json").read_bytes(),
        immutable=False,
    )
    group = json.loads((root_dir / layout.META_GROUP / "zarr.json").read_text())
    group.get("attributes", {}).pop(layout.PENDING_ATTR, None)
    put(f"{layout.META_GROUP}/zarr.json", json.dumps(group).encode(), immutable=False)
    put("zarr.json", (root_dir / "zarr.json").read_bytes(), immutable=False)
    fs.pipe_file(f"{remote_root}/{MANIFEST}", json.dumps(manifest).encode())
    report.seconds = time.perf_counter() - start
    return report


def verify_upload(path: str | os.PathLike[str], url: str) -> list[str]:
    """Problems with the remote copy: validation (every chunk decodes, lossless keys match
    their commit checksums) and the episode records against the local store's."""
    from robot_learning.store.validate import validate  # validate imports the reader

    problems = [str(p) for p in validate(url)]
    remote, local = StoreReader(url), StoreReader(path)
    if remote.num_episodes > local.num_episodes:
        problems.append(f"{url}: {remote.num_episodes} episodes, more than {path} has")
    elif remote.fingerprint() != local.fingerprint(range(remote.num_episodes)):
        problems.append(f"{url}: episode records differ from those of {path}")
    return problems


def _upload_frames(reader: StoreReader, key: str, rows: int, put) -> None:  # noqa: ANN001
    files = reader.frame_files(key)
    assert isinstance(files, ShardFiles)
    full, tail = divmod(rows, files.frames_per_shard)
    base = reader._local_root
    for shard in range(full):
        path = files.shard_path(shard)
        rel = str(path.relative_to(base))
        if path.exists():
            put(rel, path.read_bytes(), immutable=True)
    if tail:  # committed entries only: frames past the commit point stay home
        entries = files.read_shard(full)[:tail]
        if any(e is not None for e in entries):
            blob = b"".join(encode_shard(entries, files.frames_per_shard))
            put(str(files.shard_path(full).relative_to(base)), blob, immutable=False)


def _upload_chunks(reader: StoreReader, rel: str, rows: int, put) -> None:  # noqa: ANN001
    array = layout.open_array(reader._root, rel, reader.path)
    per_chunk = array.chunks[0]
    for chunk in range(-(-rows // per_chunk)):
        key = array.metadata.encode_chunk_key((chunk, *([0] * (array.ndim - 1))))
        stop = min((chunk + 1) * per_chunk, rows)
        full = stop == (chunk + 1) * per_chunk
        data = _committed_chunk(array, chunk, stop)
        if data is not None:
            put(f"{rel}/{key}", data, immutable=full)


def _committed_chunk(array: zarr.Array, chunk: int, stop: int) -> bytes | None:
    """The bytes zarr would store for ``chunk`` of an array holding rows [0, stop) only."""
    start = chunk * array.chunks[0]
    values = np.asarray(array[start:stop])
    memory: dict = {}
    shadow = zarr.create_array(
        zarr.storage.MemoryStore(memory),
        shape=(stop, *array.shape[1:]),
        chunks=array.chunks,
        dtype=array.metadata.data_type,
        fill_value=array.fill_value,
        serializer=array.serializer,
        compressors=array.compressors,
        filters=array.filters,
    )
    shadow[start:stop] = values
    data = memory.get(shadow.metadata.encode_chunk_key((chunk, *([0] * (array.ndim - 1)))))
    return None if data is None else data.to_bytes()


def _metadata_with_rows(array_dir: Path, rows: int) -> bytes:
    meta = json.loads((array_dir / "zarr.json").read_text())
    meta["shape"][0] = rows
    return json.dumps(meta).encode()


def _identity(root_dir: Path, reader: StoreReader) -> str:
    """Changes when the local store is rebuilt (its immutable files are then other files)."""
    digest = hashlib.sha256((root_dir / "zarr.json").read_bytes())
    for key in reader.schema.keys:
        meta = json.loads((root_dir / layout.data_path(key) / "zarr.json").read_text())
        meta.pop("shape")
        digest.update(json.dumps(meta, sort_keys=True).encode())
    return digest.hexdigest()


def _load_manifest(fs: fsspec.AbstractFileSystem, remote_root: str) -> dict:
    try:
        return json.loads(fs.cat_file(f"{remote_root}/{MANIFEST}"))
    except FileNotFoundError:
        return {}


class ShardCache:
    """Whole shard files of a remote store, least recently used dropped past ``max_bytes``.

    One per ``StoreReader``, shared by its image keys, so the budget bounds the reader's
    memory (per loader worker: each worker opens its own reader). Counts what it fetched.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.requests = 0  # GETs issued for frames and shard indexes (through any cache)
        self.fetched_bytes = 0
        self.hits = self.misses = 0  # shard lookups
        self.estimates: dict[str, int] = {}  # key -> bytes of its full shards (estimated)
        self._shards: OrderedDict[str, tuple[bytes, np.ndarray]] = OrderedDict()

    def get(self, path: str) -> tuple[bytes, np.ndarray] | None:
        entry = self._shards.get(path)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._shards.move_to_end(path)
        return entry

    def fits(self) -> bool:
        """Whether every full shard of the keys being read fits the budget (read-ahead)."""
        return self.max_bytes > 0 and sum(self.estimates.values()) <= self.max_bytes

    def put(self, path: str, blob: bytes, index: np.ndarray) -> None:
        if len(blob) > self.max_bytes:
            return  # larger than the whole budget: used for this batch only
        self._shards[path] = (blob, index)
        self.bytes += len(blob)
        while self.bytes > self.max_bytes:
            _, (old, _) = self._shards.popitem(last=False)
            self.bytes -= len(old)


class RemoteShards:
    """Frames of a sharded image key of a remote store, fetched a batch at a time."""

    def __init__(
        self, url: str, key: str, spec: KeySpec, array: zarr.Array, cache: ShardCache
    ) -> None:
        self.fs, root = fsspec.core.url_to_fs(url)
        self.key, self.spec = key, spec
        self.directory = f"{root}/{layout.data_path(key)}"
        self.frames_per_shard = int(array.metadata.chunk_grid.chunk_shape[0])
        self.codec = FrameCodec(spec, frame_codecs(array), self.directory)
        self.cache = cache
        self._prefix, self._suffix = chunk_key_parts(array, spec)
        self._index_bytes = 16 * self.frames_per_shard + 4
        self._full_shards = array.shape[0] // self.frames_per_shard  # immutable: cacheable
        self._indexes: dict[int, np.ndarray] = {}
        self._sized: dict[int, int] = {}  # bytes of the full shards seen so far

    def _saw(self, shard: int, size: int) -> None:
        if shard < self._full_shards and shard not in self._sized:
            self._sized[shard] = size
            mean = sum(self._sized.values()) / len(self._sized)
            self.cache.estimates[self.key] = int(mean * self._full_shards)

    def _size_up(self, shard: int) -> None:
        """A first estimate of the key's shard bytes: the size of one full shard (a HEAD)."""
        if shard >= self._full_shards:
            shard = self._full_shards - 1
        if shard < 0:
            return
        self.cache.requests += 1
        path = self.shard_path(shard)
        try:
            self._saw(shard, int(self.fs.size(path)))
        except FileNotFoundError:  # every frame of it the fill value
            self._saw(shard, 0)
        except OSError as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def shard_path(self, shard: int) -> str:
        return f"{self.directory}/{self._prefix}/{shard}/{self._suffix}"

    def _fetch(self, wanted: list[tuple[int, str, int, int]]) -> list[bytes]:
        """The byte ranges of ``wanted`` frames, neighbours in a shard fetched as one range
        (an observation window's frames lie side by side), all requests concurrently."""
        paths, starts, ends = fsspec.utils.merge_offset_ranges(
            [w[1] for w in wanted],
            [w[2] for w in wanted],
            [w[3] for w in wanted],
            max_gap=_MERGE_GAP_BYTES,
            max_block=_MERGE_MAX_BYTES,
        )
        blocks = self.fs.cat_ranges(paths, starts, ends)
        self.cache.requests += len(paths)
        self.cache.fetched_bytes += sum(len(b) for b in blocks)
        spans: dict[str, list[tuple[int, int, bytes]]] = {}
        for path, start, end, block in zip(paths, starts, ends, blocks, strict=True):
            spans.setdefault(path, []).append((start, end, block))
        out = []
        for _, path, start, end in wanted:
            block_start, _, block = next(b for b in spans[path] if b[0] <= start and end <= b[1])
            out.append(block[start - block_start : end - block_start])
        return out

    def _whole_shards(self, shards: list[int]) -> dict[int, tuple[bytes, np.ndarray]]:
        """Full shards, each from the cache or fetched whole (all misses concurrently)."""
        found: dict[int, tuple[bytes, np.ndarray]] = {}
        for shard in shards:
            entry = self.cache.get(self.shard_path(shard))
            if entry is not None:
                found[shard] = entry
        missing = [s for s in shards if s not in found]
        if not missing:
            return found
        paths = [self.shard_path(s) for s in missing]
        blobs = self.fs.cat_ranges(paths, [0] * len(paths), [None] * len(paths), on_error="return")
        self.cache.requests += len(paths)
        for shard, path, blob in zip(missing, paths, blobs, strict=True):
            if isinstance(blob, FileNotFoundError):  # every frame the fill value: no file
                blob = b""
                index = np.full((self.frames_per_shard, 2), EMPTY_ENTRY, dtype="<u8")
            elif isinstance(blob, Exception):
                raise StoreError(f"{path}: {blob}") from blob
            else:
                body = len(blob) - self._index_bytes
                if body < 0:
                    raise StoreCorruptError(
                        f"{path}: {len(blob)} bytes, shorter than its shard index"
                    )
                index = parse_index(blob[body:], body, self.frames_per_shard, Path(path))
            self.cache.fetched_bytes += len(blob)
            self.cache.put(path, blob, index)
            self._saw(shard, len(blob))
            found[shard] = blob, index
        return found

    def _indexes_of(self, shards: list[int]) -> dict[int, np.ndarray]:
        """Shard indexes (the tail's fetched afresh, full shards' cached)."""
        indexes = {s: self._indexes[s] for s in shards if s in self._indexes}
        missing = [s for s in shards if s not in indexes]
        if missing:
            blobs = self.fs.cat_ranges(
                [self.shard_path(s) for s in missing],
                [-self._index_bytes] * len(missing),
                [None] * len(missing),
                on_error="return",
            )
            self.cache.requests += len(missing)
            for shard, blob in zip(missing, blobs, strict=True):
                if isinstance(blob, FileNotFoundError):
                    index = np.full((self.frames_per_shard, 2), EMPTY_ENTRY, dtype="<u8")
                elif isinstance(blob, Exception):
                    raise StoreError(f"{self.shard_path(shard)}: {blob}") from blob
                else:
                    index = parse_index(
                        blob, 2**62, self.frames_per_shard, Path(self.shard_path(shard))
                    )
                    used = index[:, 0] != EMPTY_ENTRY
                    body = int((index[used, 0] + index[used, 1]).max()) if used.any() else 0
                    self._saw(shard, body + self._index_bytes)
                    self.cache.fetched_bytes += len(blob)
                indexes[shard] = index
                if shard < self._full_shards:
                    self._indexes[shard] = index
        return indexes

    def read(self, rows: list[int], out: np.ndarray) -> np.ndarray:
        shards = sorted({r // self.frames_per_shard for r in rows})
        if not shards:
            return out
        if self.key not in self.cache.estimates and self.cache.max_bytes > 0:
            self._size_up(shards[0])
        ahead = self.key in self.cache.estimates and self.cache.fits()
        whole = self._whole_shards([s for s in shards if s < self._full_shards]) if ahead else {}
        indexes = self._indexes_of([s for s in shards if s not in whole])
        wanted = []
        for i, row in enumerate(rows):
            shard, pos = divmod(row, self.frames_per_shard)
            if shard in whole:
                blob, index = whole[shard]
                offset, length = (int(v) for v in index[pos])
                if offset == EMPTY_ENTRY:
                    out[i] = 0
                else:
                    self._decode(memoryview(blob)[offset : offset + length], rows[i], out[i])
                continue
            offset, length = (int(v) for v in indexes[shard][pos])
            if offset == EMPTY_ENTRY:
                out[i] = 0
            else:
                wanted.append((i, self.shard_path(shard), offset, offset + length))
        if wanted:
            for (i, *_), blob in zip(wanted, self._fetch(wanted), strict=True):
                self._decode(blob, rows[i], out[i])
        return out

    def _decode(self, data: bytes | memoryview, row: int, out: np.ndarray) -> None:
        try:
            self.codec.decode(data, out=out)
        except Exception as exc:
            shard = self.shard_path(row // self.frames_per_shard)
            raise StoreCorruptError(
                f"{shard}: frame {row} of key {self.key!r} does not decode ({exc})"
            ) from exc
