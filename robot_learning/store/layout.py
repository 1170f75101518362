"""Where things live inside a store, and the few primitives reader, writer and validator share.

```
demos.zarr/
  zarr.json                 root group; attrs["robot_learning_store"] = {schema_version, schema}
  data/<key>                every key, rows of all episodes concatenated (time first);
                            image keys one frame per chunk, SHARD_FRAMES chunks to a file
                            (zarr's sharding codec; stores from before it: a file a frame,
                            which `rl store migrate` converts)
  meta/episode_ends         int64, end row (exclusive) of each episode in the main stream:
                            THE COMMIT POINT, written last; -1 marks a half-written entry
  meta/stream_ends/<name>   same for each extra stream, written before episode_ends
  meta/episode_info         one JSON document per episode (source, task, success, keys...)
  meta/curation             one JSON document per episode ("" or {"excluded": ...})
  meta (attrs)              pending_episode (what the writer is recording), normalization
  .writer.lock, .meta.lock  advisory locks (local stores only)
```
Data arrays may be longer than the committed rows while a writer appends (capacity grows in
steps so appends rarely rewrite metadata); readers only ever look below the commit point.
Every file is replaced atomically (zarr's LocalStore writes a temporary file, then renames),
so a killed process leaves either the old or the new version of each file.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.storage

from robot_learning.store import codecs  # noqa: F401  (registers the image codecs)
from robot_learning.store.errors import NotAStoreError, StoreCorruptError, StoreLockedError
from robot_learning.store.schema import (
    MAIN_STREAM,
    READABLE_SCHEMA_VERSIONS,
    Codec,
    KeySpec,
    StoreSchema,
)

ROOT_ATTR = "robot_learning_store"
DATA_GROUP = "data"
META_GROUP = "meta"
EPISODE_ENDS = "meta/episode_ends"
STREAM_ENDS_GROUP = "meta/stream_ends"
EPISODE_INFO = "meta/episode_info"
CURATION = "meta/curation"
PENDING_ATTR = "pending_episode"
NORMALIZATION_ATTR = "normalization"
WRITER_LOCK = ".writer.lock"
META_LOCK = ".meta.lock"
PARTIAL_SUFFIX = ".partial"  # zarr LocalStore's temporary files
ADDED_BY_ATTR = "added_by"  # data array attribute: what created it ahead of its declaration
ADDED_BY_ANNOTATE = "annotate"
META_CHUNK = 4096  # episodes per chunk of the meta arrays
# Frames per shard file of an image key, measured by benchmarks/store_shards.py (3 cameras
# 640x480 at 30 Hz, 10 s episodes): 128 writes 1/62 of the per-frame layout's image files per
# hour (1/38 counting every metadata file a commit rewrites; 64: 1/42 and 1/30) for 15% more
# bytes written (tail shards rewritten at commits; 256: 37%); random reads are decode-bound
# and the same at every size.
SHARD_FRAMES = 128


def is_remote(path: str | os.PathLike[str]) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def local_path(path: str | os.PathLike[str]) -> Path:
    text = str(path)
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def open_zarr_store(path: str | os.PathLike[str], *, read_only: bool) -> zarr.abc.store.Store:
    """A LocalStore for paths, an fsspec store (read-only) for URLs such as s3:// or http://."""
    if is_remote(path):
        if not read_only:
            raise ValueError(f"{path}: remote stores are read-only; write locally and copy")
        return zarr.storage.FsspecStore.from_url(str(path), read_only=True)
    return zarr.storage.LocalStore(local_path(path), read_only=read_only)


def ends_path(stream: str) -> str:
    return EPISODE_ENDS if stream == MAIN_STREAM else f"{STREAM_ENDS_GROUP}/{stream}"


def data_path(key: str) -> str:
    return f"{DATA_GROUP}/{key}"


# What zarr raises on a damaged metadata document: bad JSON, invalid UTF-8 (both ValueError),
# or a well-formed document it rejects (ValueError/TypeError/AttributeError from its parsing).
METADATA_ERRORS = (ValueError, TypeError, AttributeError)


def open_root(store: zarr.abc.store.Store, where: str, *, mode: str = "r") -> zarr.Group:
    """Open the root group, raising NotAStoreError/StoreCorruptError that name the file."""
    try:
        root = zarr.open_group(store, mode=mode)
    except (  # before METADATA_ERRORS: zarr's not-found errors are ValueErrors too
        FileNotFoundError,
        zarr.errors.GroupNotFoundError,
        zarr.errors.NodeTypeValidationError,
    ) as exc:
        if _looks_like_a_store(where):
            raise StoreCorruptError(
                f"{where}/zarr.json: missing, but the folder holds a store's data/ and meta/ "
                "(a damaged store: restore zarr.json from a copy of the store)"
            ) from exc
        raise NotAStoreError(f"{where}: not a robot_learning store (no zarr group)") from exc
    except METADATA_ERRORS as exc:
        raise StoreCorruptError(f"{where}/zarr.json: unreadable metadata ({_brief(exc)})") from exc
    if ROOT_ATTR not in root.attrs:
        if not is_remote(where) and is_empty_or_unfinished_store(Path(where)):
            raise NotAStoreError(
                f"{where}: not a store yet: its creation was interrupted before anything was "
                "recorded (zarr metadata only); the next writer on this path finishes it"
            )
        if _looks_like_a_store(where):
            raise StoreCorruptError(
                f"{where}/zarr.json: no {ROOT_ATTR!r} attribute, but the folder holds a store's "
                "data/ and meta/ (a damaged store: restore zarr.json from a copy of the store)"
            )
        raise NotAStoreError(
            f"{where}: a zarr group, but not a robot_learning store (no {ROOT_ATTR!r} attribute)"
        )
    return root


def _looks_like_a_store(where: str) -> bool:
    local = None if is_remote(where) else Path(where)
    return local is not None and (local / META_GROUP).is_dir() and (local / DATA_GROUP).is_dir()


def is_store(root_dir: Path) -> bool:
    """True when ``root_dir`` holds a store (its root attribute is written last)."""
    try:
        return ROOT_ATTR in json.loads((root_dir / "zarr.json").read_text()).get("attributes", {})
    except (FileNotFoundError, ValueError, AttributeError):
        return (root_dir / "zarr.json").exists()  # unreadable metadata: let opening report it


def is_empty_or_unfinished_store(root_dir: Path) -> bool:
    """Nothing here but zarr metadata and locks: a store whose creation was interrupted."""
    if not root_dir.exists():
        return True
    allowed = {"zarr.json", WRITER_LOCK, META_LOCK, RESERVE_FILE}
    return all(
        p.is_dir() or p.name in allowed or p.name.endswith(PARTIAL_SUFFIX)
        for p in root_dir.rglob("*")
    )


def open_group(root: zarr.Group, path: str, where: str) -> zarr.Group:
    """A group below the root, read-only; StoreCorruptError names its zarr.json."""
    try:
        node = zarr.open_group(root.store, path=path, mode="r")
    except (
        FileNotFoundError,
        KeyError,
        zarr.errors.GroupNotFoundError,
        zarr.errors.NodeTypeValidationError,
    ) as exc:
        raise StoreCorruptError(f"{where}/{path}/zarr.json: missing group metadata") from exc
    except METADATA_ERRORS as exc:
        raise StoreCorruptError(
            f"{where}/{path}/zarr.json: unreadable metadata ({_brief(exc)})"
        ) from exc
    return node


def _brief(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def read_schema(root: zarr.Group, where: str) -> tuple[int, StoreSchema]:
    header = root.attrs[ROOT_ATTR]
    version = header.get("schema_version") if isinstance(header, dict) else None
    if version not in READABLE_SCHEMA_VERSIONS:
        raise StoreCorruptError(
            f"{where}: schema version {version!r}; this software reads versions "
            f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}"
        )
    try:
        return version, StoreSchema.from_json(header["schema"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreCorruptError(f"{where}/zarr.json: invalid schema declaration ({exc})") from exc


def open_array(root: zarr.Group, path: str, where: str) -> zarr.Array:
    try:
        node = root[path]
    except METADATA_ERRORS as exc:
        raise StoreCorruptError(
            f"{where}/{path}/zarr.json: unreadable metadata ({_brief(exc)})"
        ) from exc
    except KeyError as exc:
        document = None if is_remote(where) else Path(where) / path / "zarr.json"
        if document is not None and document.is_file():  # there, but zarr cannot use it
            raise StoreCorruptError(f"{document}: unreadable metadata ({_brief(exc)})") from exc
        raise StoreCorruptError(f"{where}/{path}: missing array") from exc
    if not isinstance(node, zarr.Array):
        raise StoreCorruptError(f"{where}/{path}: expected an array, found a group")
    return node


def committed_count(ends: np.ndarray) -> int:
    """Episodes whose end row is valid: strictly increasing, positive, not the -1 fill."""
    count, previous = 0, 0
    for end in ends.tolist():
        if end <= previous:
            break
        count, previous = count + 1, end
    return count


def create_key_array(
    root: zarr.Group,
    key: str,
    spec: KeySpec,
    rows: int,
    *,
    shard_frames: int = SHARD_FRAMES,
    added_by: str = "",
) -> zarr.Array:
    """The zarr array for one key: images one frame per chunk, ``shard_frames`` chunks to a
    file (zarr's sharding codec; 1 = the per-frame files of older stores); low-dim data in
    row blocks. ``added_by`` marks an array created before the schema declares it (see
    ``undeclared_annotation_arrays``)."""
    chunks = (spec.rows_per_chunk, *spec.shape)
    kwargs: dict[str, Any] = {"serializer": "auto", "compressors": None}
    if spec.is_image and shard_frames > 1:
        kwargs["shards"] = (shard_frames * spec.rows_per_chunk, *spec.shape)
    if spec.codec == Codec.JPEG:
        kwargs["serializer"] = codecs.JpegCodec(quality=spec.quality)
    elif spec.codec == Codec.JPEGXL:
        kwargs["serializer"] = codecs.JpegXlCodec(quality=spec.quality, effort=spec.effort)
    elif spec.codec == Codec.DEPTH:
        kwargs["compressors"] = zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")
    elif spec.codec == Codec.LOWDIM:
        kwargs["compressors"] = zarr.codecs.ZstdCodec(level=3)
    fill = np.nan if spec.is_float else 0
    return root.create_array(
        data_path(key),
        shape=(rows, *spec.shape),
        chunks=chunks,
        dtype=spec.dtype,
        fill_value=fill,
        attributes={"spec": spec.to_json(), **({ADDED_BY_ATTR: added_by} if added_by else {})},
        **kwargs,
    )


def undeclared_annotation_arrays(root: zarr.Group, schema: StoreSchema) -> list[str]:
    """Arrays in data/ that an annotation created and a crash left undeclared: not part of
    the store (no reader looks at them); recovery deletes them."""
    try:
        names = set(root[DATA_GROUP].keys()) - set(schema.keys)
    except KeyError:
        return []
    leftovers = []
    for name in sorted(names):
        try:
            node = root[data_path(name)]
        except (KeyError, *METADATA_ERRORS):  # damaged metadata: validate reports it
            continue
        if isinstance(node, zarr.Array) and node.attrs.get(ADDED_BY_ATTR) == ADDED_BY_ANNOTATE:
            leftovers.append(name)
    return leftovers


def create_ends_array(root: zarr.Group, stream: str) -> zarr.Array:
    return root.create_array(
        ends_path(stream),
        shape=(0,),
        chunks=(META_CHUNK,),
        dtype="int64",
        fill_value=-1,
        compressors=zarr.codecs.ZstdCodec(level=3),
    )


def create_text_array(root: zarr.Group, path: str) -> zarr.Array:
    return root.create_array(path, shape=(0,), chunks=(META_CHUNK,), dtype=str, fill_value="")


@contextmanager
def file_lock(path: Path, *, blocking: bool, what: str) -> Iterator[int]:
    """An exclusive flock; released when the process dies, so a crash never leaves it held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise StoreLockedError(
                f"{path.parent}: {what} is held by another process (pid {holder})"
            ) from exc
        yield fd
    finally:
        os.close(fd)


def writer_is_active(root_dir: Path) -> bool:
    """True when a live process holds the writer lock."""
    path = root_dir / WRITER_LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


RESERVE_FILE = ".space_reserve"
RESERVE_BYTES = 256 * 1024  # room for recovery's metadata writes when the disk is full


def keep_reserve(root_dir: Path) -> None:
    """Hold ``RESERVE_BYTES`` in a file the writer owns, so that on a full disk a discard or
    a recovery can free it and still write its few KB of metadata (a sharded store keeps
    an interrupted episode's frames inside shards it cannot delete). Best effort."""
    path = Path(root_dir) / RESERVE_FILE
    try:
        if path.exists() and path.stat().st_size >= RESERVE_BYTES:
            return
        with open(path, "wb") as f:
            f.write(b"\0" * RESERVE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        path.unlink(missing_ok=True)  # no room for it now; the next writer tries again


def release_reserve(root_dir: Path) -> int:
    """Delete the reserve; returns the bytes freed (0 when there was none)."""
    path = Path(root_dir) / RESERVE_FILE
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    path.unlink(missing_ok=True)
    return size


def leftover_partial_files(root_dir: Path) -> list[Path]:
    """Temporary files of writes interrupted by a crash (never part of the store)."""
    return sorted(p for p in root_dir.rglob(f"*{PARTIAL_SUFFIX}") if p.is_file())


def update_meta_attrs(
    store: zarr.abc.store.Store, root_dir: Path | None, changes: dict[str, Any]
) -> None:
    """Set (or, for None, delete) attributes of the meta group from a fresh read.

    Several processes change these attributes (writer, curation, statistics); each re-reads
    under the meta lock so none overwrites another's change. ``root_dir`` None: the caller
    already holds the lock.
    """

    def apply() -> None:
        meta = zarr.open_group(store, path=META_GROUP, mode="r+")
        attrs = dict(meta.attrs)
        for key, value in changes.items():
            if value is None:
                attrs.pop(key, None)
            else:
                attrs[key] = value
        meta.attrs.put(attrs)  # replaces the whole document in one atomic file write

    if root_dir is None:
        apply()
        return
    with file_lock(root_dir / META_LOCK, blocking=True, what="the meta lock"):
        apply()
