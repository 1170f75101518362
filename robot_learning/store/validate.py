"""Store validation: every problem reported with the episode, key and file it concerns.

Checks metadata (schema, commit point, per-episode records), array declarations against the
schema (shape, dtype, codec), rows past the last commit, leftovers of interrupted writes,
and (unless ``check_data=False``) that every committed chunk decodes and every lossless key
matches the checksum recorded at commit.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import zarr
from tqdm import tqdm

from robot_learning.store import layout
from robot_learning.store.codecs import JpegCodec, JpegXlCodec
from robot_learning.store.errors import StoreError
from robot_learning.store.frame_files import ShardFiles, frame_codecs, is_sharded
from robot_learning.store.reader import StoreReader
from robot_learning.store.schema import Codec, KeySpec, StoreSchema


@dataclass(frozen=True)
class Problem:
    message: str
    episode: int | None = None
    key: str | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = [
            f"episode {self.episode}" if self.episode is not None else "",
            f"key {self.key!r}" if self.key else "",
            self.file or "",
        ]
        prefix = ", ".join(w for w in where if w)
        return f"{prefix}: {self.message}" if prefix else self.message


def validate(
    path: str | os.PathLike[str], *, check_data: bool = True, progress: bool = False
) -> list[Problem]:
    """All problems found; an empty list means the store is sound."""
    where = str(path)
    try:
        store = layout.open_zarr_store(path, read_only=True)
        root = layout.open_root(store, where)
        _, schema = layout.read_schema(root, where)
    except (StoreError, OSError) as exc:
        return [Problem(str(exc))]
    local = None if layout.is_remote(path) else layout.local_path(path)
    writer_active = local is not None and layout.writer_is_active(local)
    problems = _check_groups(root, schema, where) + _check_declarations(
        root, schema, writer_active, where
    )
    if problems:
        return problems
    try:
        reader = StoreReader(path)
        problems += _check_commit_tail(root, reader, writer_active, where)
    except StoreError as exc:
        return [*problems, Problem(str(exc))]
    problems += _check_episode_records(reader)
    if local is not None and not writer_active:
        problems += [
            Problem("temporary file of an interrupted write (run `rl store recover`)", file=str(p))
            for p in layout.leftover_partial_files(local)
        ]
    if check_data:
        problems += _check_shard_files(reader) + _check_data(reader, progress)
    return problems


def _check_groups(root: zarr.Group, schema: StoreSchema, where: str) -> list[Problem]:
    """Every group on the way to an array has readable metadata (zarr reads arrays without
    their parents' documents, so damage there would otherwise go unnoticed)."""
    arrays = [layout.data_path(k) for k in schema.keys]
    arrays += [layout.EPISODE_INFO, layout.CURATION]
    arrays += [layout.ends_path(s) for s in schema.streams]
    groups = sorted({a.rsplit("/", i)[0] for a in arrays for i in range(1, a.count("/") + 1)})
    problems = []
    for group in groups:
        try:
            layout.open_group(root, group, where)
        except StoreError as exc:
            problems.append(Problem(str(exc), file=f"{where}/{group}/zarr.json"))
    return problems


def _check_shard_files(reader: StoreReader) -> list[Problem]:
    """A shard file holding committed frames must exist: zarr reads a missing one as fill
    (all-black frames), so a lost file would otherwise pass as data. The writer leaves no
    file only for a shard whose every frame is all zero, or that holds no frame at all: the
    rows of episodes without that camera (a human video beside robot demos filmed with a
    wrist camera) are not frames of it."""
    problems: list[Problem] = []
    if layout.is_remote(reader.path) or reader.num_episodes == 0:
        return problems
    for key, spec in reader.schema.keys.items():
        try:
            files = reader.frame_files(key) if spec.is_image else None
        except StoreError:
            continue  # _check_data names what is wrong with the array
        if not isinstance(files, ShardFiles):
            continue
        recorded = _recorded_rows(reader, key)
        per_shard = files.frames_per_shard
        for shard in range(-(-len(recorded) // per_shard)):
            rows = np.flatnonzero(recorded[shard * per_shard : (shard + 1) * per_shard])
            path = files.shard_path(shard)
            if len(rows) and not path.exists():
                first, last = shard * per_shard + rows[0], shard * per_shard + rows[-1]
                problems.append(
                    Problem(
                        f"no shard file for committed rows {first}..{last}: they read as all-black "
                        "frames; unless the camera recorded only black there, the file was lost",
                        episode=reader.episode_of_row(int(first)),
                        key=key,
                        file=str(path),
                    )
                )
    return problems


def _recorded_rows(reader: StoreReader, key: str) -> np.ndarray:
    """(committed rows,) bool: the rows of ``key``'s stream that episodes recording it hold."""
    stream = reader.spec(key).stream
    recorded = np.zeros(int(reader.stream_ends(stream)[-1]), dtype=bool)
    for index in range(reader.num_episodes):
        episode = reader.episode(index)
        if key in episode.info.keys:
            start, stop = episode.rows[stream]
            recorded[start:stop] = True
    return recorded


def _expected_codec(spec: KeySpec) -> str:
    return {
        Codec.JPEG: JpegCodec.codec_name,
        Codec.JPEGXL: JpegXlCodec.codec_name,
        Codec.DEPTH: "blosc",
        Codec.LOWDIM: "zstd",
        Codec.RAW_IMAGE: "bytes",
    }[spec.codec]


def _codec_names(array: zarr.Array) -> list[str]:
    """Codec names of one frame or row block (a shard's inner codecs for sharded arrays)."""
    return [c.to_dict()["name"] for c in frame_codecs(array)]


def _check_declarations(
    root: zarr.Group, schema: StoreSchema, writer_active: bool, where: str
) -> list[Problem]:
    problems = []
    keys = schema.keys
    for key, spec in keys.items():
        path = layout.data_path(key)
        try:
            array = layout.open_array(root, path, where)
        except StoreError as exc:
            problems.append(Problem(str(exc), key=key, file=f"{where}/{path}/zarr.json"))
            continue
        if tuple(array.shape[1:]) != spec.shape:
            problems.append(
                Problem(
                    f"rows have shape {tuple(array.shape[1:])}, schema says {spec.shape}",
                    key=key,
                    file=f"{where}/{path}",
                )
            )
        if np.dtype(array.dtype) != np.dtype(spec.dtype):
            problems.append(
                Problem(
                    f"dtype {array.dtype}, schema says {spec.dtype}",
                    key=key,
                    file=f"{where}/{path}",
                )
            )
        if is_sharded(array) and tuple(array.metadata.codecs[0].chunk_shape) != (1, *spec.shape):
            problems.append(
                Problem(
                    f"shards hold chunks of {array.metadata.codecs[0].chunk_shape}, "
                    f"expected one frame {(1, *spec.shape)}",
                    key=key,
                    file=f"{where}/{path}/zarr.json",
                )
            )
        names = _codec_names(array)
        if _expected_codec(spec) not in names:
            problems.append(
                Problem(
                    f"codecs {names}, schema declares {spec.codec}", key=key, file=f"{where}/{path}"
                )
            )
    try:
        data_group = root[layout.DATA_GROUP]
        with warnings.catch_warnings():  # a member with damaged metadata: reported above
            warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
            extra = sorted(set(data_group.keys()) - set(keys))
    except (KeyError, ValueError) as exc:
        return [*problems, Problem(f"data group unreadable ({exc})", file=f"{where}/data")]
    staged = layout.undeclared_annotation_arrays(root, schema)
    problems += [
        Problem("array not declared in the schema", key=k) for k in extra if k not in staged
    ]
    if not writer_active:  # while annotation runs (it holds the writer lock): work in progress
        problems += [
            Problem(
                "array left undeclared by an interrupted annotation (run `rl store recover`)", key=k
            )
            for k in staged
        ]
    return problems


def _check_commit_tail(
    root: zarr.Group, reader: StoreReader, writer_active: bool, where: str
) -> list[Problem]:
    if writer_active:
        return []  # a live writer's uncommitted rows are work in progress, not damage
    problems = []
    n = reader.num_episodes
    ends = layout.open_array(root, layout.EPISODE_ENDS, where)
    if ends.shape[0] > n:
        problems.append(
            Problem(
                f"{ends.shape[0] - n} half-written commit entries past the last "
                "committed episode (run `rl store recover`)",
                file=f"{where}/{layout.EPISODE_ENDS}",
            )
        )
    pending = layout.open_group(root, layout.META_GROUP, where).attrs.get(layout.PENDING_ATTR)
    if isinstance(pending, dict) and pending.get("index", -1) >= n:
        problems.append(
            Problem(
                "uncommitted episode left by a writer that did not finish "
                f"(task {pending.get('task')!r}; run `rl store recover`)",
                episode=pending.get("index"),
            )
        )
    for key, spec in reader.schema.keys.items():
        committed = int(reader.stream_ends(spec.stream)[-1]) if n else 0
        rows = reader.array(key).shape[0]
        if rows > committed:
            problems.append(
                Problem(
                    f"{rows - committed} rows past the last commit "
                    f"({committed} committed; run `rl store recover`)",
                    key=key,
                )
            )
    return problems


def _check_episode_records(reader: StoreReader) -> list[Problem]:
    problems = []
    for ep in reader.episodes:
        for stream, (start, stop) in ep.rows.items():
            recorded = ep.info.lengths.get(stream)
            if recorded is not None and recorded != stop - start:
                problems.append(
                    Problem(
                        f"stream {stream!r} has {stop - start} rows, the episode "
                        f"record says {recorded}",
                        episode=ep.index,
                    )
                )
        unknown = sorted(set(ep.info.keys) - set(reader.schema.keys))
        if unknown:
            problems.append(
                Problem(f"records keys missing from the schema: {unknown}", episode=ep.index)
            )
    return problems


def _check_data(reader: StoreReader, progress: bool) -> list[Problem]:
    problems = []
    lowdim = [k for k, spec in reader.schema.keys.items() if not spec.is_image]
    for key in tqdm(lowdim, desc="validate low-dim keys", unit="key", disable=not progress):
        problems += _check_lowdim_key(reader, key)
    for ep in tqdm(reader.episodes, desc="validate images", unit="episode", disable=not progress):
        for key in ep.info.keys:
            spec = reader.schema.keys.get(key)
            if spec is None or not spec.is_image:
                continue
            start, stop = ep.rows[spec.stream]
            try:
                for row in range(start, stop, 64):
                    reader.read_frames(key, range(row, min(row + 64, stop)))
            except Exception as exc:
                problems.append(Problem(f"unreadable chunk: {exc}", episode=ep.index, key=key))
    return problems


def _check_lowdim_key(reader: StoreReader, key: str) -> list[Problem]:
    """Decode the key's committed rows once; checksum each episode's slice of them."""
    stream = reader.spec(key).stream
    episodes = [ep for ep in reader.episodes if key in ep.info.keys]
    if not episodes:
        return []
    committed = int(reader.stream_ends(stream)[-1])
    try:
        rows = reader.read_rows(key, 0, committed)
    except Exception:
        rows = None  # a bad chunk: read episode by episode to say which ones it hits
    problems = []
    for ep in episodes:
        start, stop = ep.rows[stream]
        try:
            values = rows[start:stop] if rows is not None else reader.read_rows(key, start, stop)
        except Exception as exc:
            problems.append(Problem(f"unreadable chunk: {exc}", episode=ep.index, key=key))
            continue
        expected = ep.info.checksums.get(key)
        actual = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
        if expected is not None and expected != actual:
            problems.append(
                Problem(
                    "data differs from the checksum recorded at commit", episode=ep.index, key=key
                )
            )
    return problems
