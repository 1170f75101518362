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

``RemoteShards`` reads frames of a sharded image key for ``StoreReader`` on a URL: shard
indexes cached, and every frame of a batch fetched in one concurrent ``cat_ranges`` call
(read-ahead of the whole batch) instead of one request after another.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
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


class RemoteShards:
    """Frames of a sharded image key of a remote store, fetched a batch at a time."""

    def __init__(self, url: str, key: str, spec: KeySpec, array: zarr.Array) -> None:
        self.fs, root = fsspec.core.url_to_fs(url)
        self.key, self.spec = key, spec
        self.directory = f"{root}/{layout.data_path(key)}"
        self.frames_per_shard = int(array.metadata.chunk_grid.chunk_shape[0])
        self.codec = FrameCodec(spec, frame_codecs(array), self.directory)
        self._prefix, self._suffix = chunk_key_parts(array, spec)
        self._index_bytes = 16 * self.frames_per_shard + 4
        self._full_shards = array.shape[0] // self.frames_per_shard  # immutable: cacheable
        self._indexes: dict[int, np.ndarray] = {}

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
        spans: dict[str, list[tuple[int, int, bytes]]] = {}
        for path, start, end, block in zip(paths, starts, ends, blocks, strict=True):
            spans.setdefault(path, []).append((start, end, block))
        out = []
        for _, path, start, end in wanted:
            block_start, _, block = next(b for b in spans[path] if b[0] <= start and end <= b[1])
            out.append(block[start - block_start : end - block_start])
        return out

    def read(self, rows: list[int], out: np.ndarray) -> np.ndarray:
        shards = sorted({r // self.frames_per_shard for r in rows})
        indexes = {s: self._indexes[s] for s in shards if s in self._indexes}
        missing = [s for s in shards if s not in indexes]
        if missing:
            blobs = self.fs.cat_ranges(
                [self.shard_path(s) for s in missing],
                [-self._index_bytes] * len(missing),
                [None] * len(missing),
                on_error="return",
            )
            for shard, blob in zip(missing, blobs, strict=True):
                if isinstance(blob, FileNotFoundError):
                    index = np.full((self.frames_per_shard, 2), EMPTY_ENTRY, dtype="<u8")
                elif isinstance(blob, Exception):
                    raise StoreError(f"{self.shard_path(shard)}: {blob}") from blob
                else:
                    index = parse_index(
                        blob, 2**62, self.frames_per_shard, Path(self.shard_path(shard))
                    )
                indexes[shard] = index
                if shard < self._full_shards:
                    self._indexes[shard] = index
        wanted = []
        for i, row in enumerate(rows):
            shard, pos = divmod(row, self.frames_per_shard)
            offset, length = (int(v) for v in indexes[shard][pos])
            if offset == EMPTY_ENTRY:
                out[i] = 0
            else:
                wanted.append((i, self.shard_path(shard), offset, offset + length))
        if wanted:
            for (i, path, *_), blob in zip(wanted, self._fetch(wanted), strict=True):
                try:
                    self.codec.decode(blob, out=out[i])
                except Exception as exc:
                    raise StoreCorruptError(
                        f"{path}: frame {rows[i]} of key {self.key!r} does not decode ({exc})"
                    ) from exc
        return out
