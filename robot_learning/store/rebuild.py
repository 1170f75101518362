"""Rebuilding stores from their committed episodes: migrate, merge, compact.

- ``migrate``: an older store (a file per frame) to the sharded layout; frames keep their
  exact encoded bytes, episode records and statistics stay as they were (same fingerprint).
- ``merge``: several stores into one (episodes renumbered; each remembers where it came
  from in ``notes["merged_from"]``).
- ``compact``: image keys re-encoded to a denser codec (JPEG-XL or JPEG at another
  quality), reporting bytes before and after and the PSNR of the new frames to the old.

All three build a complete new store in a private directory beside the target, verify it
(full validation, episode count, and for byte copies the frames' bytes), and only then make
it visible: one rename for a new path, or, in place, one atomic exchange of the two
directories (Linux ``renameat2(RENAME_EXCHANGE)``), after which the old store is deleted.
A process killed at any instant leaves the original store untouched or the finished new one
in its place; the next run removes what a killed run left. The source's writer and meta
locks are held throughout, so no episode is committed or curated meanwhile.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from tqdm import tqdm

from robot_learning.store import layout
from robot_learning.store.durability import LIBC
from robot_learning.store.errors import StoreError, StoreInputError
from robot_learning.store.frame_files import frame_codecs, frame_files, is_sharded
from robot_learning.store.reader import StoreReader
from robot_learning.store.schema import SCHEMA_VERSION, Codec, KeySpec, StoreSchema

BUILDING_SUFFIX = ".rebuilding"  # the private directory a new store is built in
# compact's default, measured by benchmarks/archive_codecs.py on rendered 640x480 frames:
# JPEG-XL effort 5 at quality 70 matches the recording's PSNR (JPEG q90 4:4:4, ~44.5 dB) in
# 2.7x fewer bytes; ~45 ms to encode a frame on one core, so it is for archives, not live.
COMPACT_CODEC = Codec.JPEGXL
COMPACT_QUALITY = 70
COMPACT_EFFORT = 5
_RENAME_EXCHANGE = 2
_LOWDIM_BLOCK_ROWS = 1 << 16


@dataclass
class RebuildReport:
    """What a rebuild produced; ``message()`` is what the user is told."""

    how: str
    path: str
    episodes: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    files_before: int = 0
    files_after: int = 0
    psnr_db: dict[str, float] = field(default_factory=dict)  # re-encoded key -> PSNR
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # cleanups, nothing-to-do

    def message(self) -> str:
        if self.notes and not self.episodes:
            return "; ".join(self.notes)
        text = "".join(f"{n}\n" for n in self.notes) + (
            f"{self.path}: {self.how} done, {self.episodes} episodes; "
            f"{self.bytes_before / 1e6:,.1f} MB in {self.files_before:,} files -> "
            f"{self.bytes_after / 1e6:,.1f} MB in {self.files_after:,} files "
            f"({self.seconds:.1f} s)"
        )
        if self.psnr_db:
            text += "; PSNR to the previous frames: " + ", ".join(
                f"{k} {v:.1f} dB" for k, v in sorted(self.psnr_db.items())
            )
        return text


@dataclass(frozen=True)
class _Part:
    """Episodes of one source store going into the new one."""

    reader: StoreReader
    episodes: list[int]


# ------------------------------------------------------------------------------- commands
def migrate(
    path: str | os.PathLike[str],
    to: str | os.PathLike[str] | None = None,
    *,
    shard_frames: int = layout.SHARD_FRAMES,
    progress: bool = False,
) -> RebuildReport:
    """Convert a store to the sharded layout, in place or into the new path ``to``."""
    return _rebuild(
        "migrate",
        [path],
        to,
        shard_frames=shard_frames,
        progress=progress,
        keep_records=True,
        skip_if_sharded=to is None,
    )


def merge(
    sources: Sequence[str | os.PathLike[str]],
    to: str | os.PathLike[str],
    *,
    shard_frames: int = layout.SHARD_FRAMES,
    progress: bool = False,
) -> RebuildReport:
    """One new store ``to`` holding every committed episode of ``sources``, in order."""
    if len(sources) < 1:
        raise StoreInputError("merge needs at least one source store")
    return _rebuild(
        "merge", sources, to, shard_frames=shard_frames, progress=progress, keep_records=False
    )


def compact(
    path: str | os.PathLike[str],
    to: str | os.PathLike[str] | None = None,
    *,
    keys: Sequence[str] | None = None,
    codec: Codec = COMPACT_CODEC,
    quality: int = COMPACT_QUALITY,
    effort: int = COMPACT_EFFORT,
    shard_frames: int = layout.SHARD_FRAMES,
    progress: bool = False,
) -> RebuildReport:
    """Re-encode color image keys (default: every JPEG/JPEG-XL key) into a denser codec."""
    schema = StoreReader(path).schema
    chosen = (
        list(keys)
        if keys
        else [k for k, spec in schema.keys.items() if spec.codec in (Codec.JPEG, Codec.JPEGXL)]
    )
    try:
        specs = {
            k: replace(schema.keys[k], codec=codec, quality=quality, effort=effort) for k in chosen
        }
    except KeyError as exc:
        raise StoreInputError(f"{path}: no key {exc} to compact") from exc
    except ValueError as exc:
        raise StoreInputError(f"{path}: cannot compact: {exc}") from exc
    return _rebuild(
        "compact",
        [path],
        to,
        shard_frames=shard_frames,
        progress=progress,
        keep_records=True,
        new_specs=specs,
    )


# ------------------------------------------------------------------------------ the frame
def _rebuild(
    how: str,
    sources: Sequence[str | os.PathLike[str]],
    to: str | os.PathLike[str] | None,
    *,
    shard_frames: int,
    progress: bool,
    keep_records: bool,
    new_specs: dict[str, KeySpec] | None = None,
    skip_if_sharded: bool = False,
) -> RebuildReport:
    start_s = time.perf_counter()
    roots = [layout.local_path(s) for s in sources]
    for source in sources:
        if layout.is_remote(source):
            raise StoreError(f"{source}: {how} needs local stores")
    if len({r.resolve() for r in roots}) != len(roots):
        raise StoreInputError(f"a store is named twice among {[str(r) for r in roots]}")
    in_place = to is None
    target = roots[0] if in_place else layout.local_path(to)
    building = target.with_name(target.name + BUILDING_SUFFIX)
    with ExitStack() as locks:
        for root in roots:  # no commits and no curation while we copy
            layout.open_root(layout.open_zarr_store(root, read_only=True), str(root))
            locks.enter_context(
                layout.file_lock(root / layout.WRITER_LOCK, blocking=False, what="the writer lock")
            )
            locks.enter_context(
                layout.file_lock(root / layout.META_LOCK, blocking=True, what="the meta lock")
            )
        report = RebuildReport(how=how, path=str(target))
        leftover = finish_interrupted(target)
        if leftover:
            report.notes.append(leftover)
        if skip_if_sharded and is_current_layout(target):
            report.notes.append(f"{target}: already sharded, nothing to migrate")
            return report
        if not in_place and target.exists():
            raise StoreInputError(f"{target}: exists; give a new path to {how} into")
        if target in roots[1:] or (not in_place and target in roots):
            raise StoreInputError(f"{target}: the target cannot be one of the sources")
        readers = [StoreReader(r) for r in roots]
        parts = [_Part(r, r.select(include_excluded=True)) for r in readers]
        schema = _combined_schema(parts, new_specs or {})
        report.bytes_before, report.files_before = _usage(roots)
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        (building / _MARKER).write_text(
            json.dumps({"how": how, "sources": [str(r) for r in roots], "target": str(target)})
        )
        try:
            report.psnr_db = _build(
                building,
                parts,
                schema,
                shard_frames=shard_frames,
                keep_records=keep_records,
                progress=progress,
                how=how,
            )
            report.episodes = _verify(building, parts, keep_records and not new_specs)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)  # the sources were never touched
            raise
        (building / _MARKER).unlink()
        if in_place:
            _exchange(building, target)  # the commit point of an in-place rebuild
            shutil.rmtree(building)  # now the old store
        else:
            os.rename(building, target)
    report.bytes_after, report.files_after = _usage([target])
    report.seconds = time.perf_counter() - start_s
    return report


_MARKER = ".rebuild-in-progress"  # inside a build that has not been verified yet


def finish_interrupted(target: Path) -> str | None:
    """Remove what a killed rebuild into ``target`` left; says what, or None.

    Before the exchange the private directory holds an unfinished build; after it, the old
    store, already replaced by its verified rebuild. Either way it can go.
    """
    building = target.with_name(target.name + BUILDING_SUFFIX)
    if not building.exists():
        return None
    what = "an unfinished rebuild" if (building / _MARKER).exists() else "a finished rebuild"
    shutil.rmtree(building)
    return f"{building}: removed {what} left by an interrupted run ({target} is complete)"


def _combined_schema(parts: list[_Part], new_specs: dict[str, KeySpec]) -> StoreSchema:
    first = parts[0].reader.schema
    keys, rates = dict(first.keys), dict(first.stream_rates_hz)
    for part in parts[1:]:
        problems = StoreSchema(keys=keys).compatible_with(part.reader.schema)
        problems = [p for p in problems if "not in the store" not in p]
        if problems:
            raise StoreInputError(f"{part.reader.path}: cannot merge: " + "; ".join(problems))
        keys.update({k: v for k, v in part.reader.schema.keys.items() if k not in keys})
        rates.update(part.reader.schema.stream_rates_hz)
    for key, spec in new_specs.items():
        old = keys.get(key)
        if old is None or not old.is_image:
            raise StoreInputError(f"{parts[0].reader.path}: no image key {key!r} to re-encode")
        if (spec.shape, spec.dtype, spec.stream) != (old.shape, old.dtype, old.stream):
            raise StoreInputError(f"key {key!r}: re-encoding may not change shape/dtype/stream")
        keys[key] = spec
    return StoreSchema(keys=keys, stream_rates_hz=rates)


def _build(
    dest: Path,
    parts: list[_Part],
    schema: StoreSchema,
    *,
    shard_frames: int,
    keep_records: bool,
    progress: bool,
    how: str,
) -> dict[str, float]:
    """Write every episode of ``parts`` into a new store at ``dest``; returns PSNRs."""
    root = zarr.open_group(zarr.storage.LocalStore(dest), mode="a")  # a fresh directory
    root.require_group(layout.DATA_GROUP)
    root.require_group(layout.META_GROUP)
    ranges = {  # stream -> [(part, episode, start, stop)] in the new store's order
        s: [(p, e, *p.reader.episode(e).rows.get(s, (0, 0))) for p in parts for e in p.episodes]
        for s in schema.streams
    }
    totals = {s: sum(stop - start for *_, start, stop in r) for s, r in ranges.items()}
    psnr = {}
    with tqdm(
        total=sum(totals[s.stream] for s in schema.keys.values() if s.is_image),
        desc=f"{how}: frames",
        unit="frame",
        disable=not progress,
    ) as bar:
        for key, spec in schema.keys.items():
            array = layout.create_key_array(
                root, key, spec, totals[spec.stream], shard_frames=shard_frames
            )
            if spec.is_image:
                mse = _copy_frames(key, array, ranges[spec.stream], dest, bar)
                if mse is not None:
                    psnr[key] = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
            else:
                _copy_rows(key, array, ranges[spec.stream])
    # Metadata last, the commit point (episode ends) last of all.
    infos, curations = [], []
    for new_index, (part, e) in enumerate((p, e) for p in parts for e in p.episodes):
        ep = part.reader.episode(e)
        info = ep.info
        if not keep_records:
            notes = {**info.notes, "merged_from": {"store": part.reader.path, "episode": e}}
            info = replace(info, index=new_index, notes=notes)
        infos.append(_raw_info(part.reader, e) if keep_records else info.to_json())
        curations.append(ep.curation.to_json())
    for path, values in ((layout.EPISODE_INFO, infos), (layout.CURATION, curations)):
        array = layout.create_text_array(root, path)
        array.resize((len(values),))
        if values:
            array[:] = np.array(values, dtype=object)
    for stream in [*schema.streams[1:], schema.streams[0]]:
        ends = np.cumsum([stop - start for *_, start, stop in ranges[stream]], dtype=np.int64)
        array = layout.create_ends_array(root, stream)
        array.resize((len(ends),))
        if len(ends):
            array[:] = ends
    if keep_records:
        attrs = parts[0].reader.meta_attrs()
        attrs.pop(layout.PENDING_ATTR, None)
        if attrs:
            layout.update_meta_attrs(zarr.storage.LocalStore(dest), None, attrs)
    header = dict(parts[0].reader._root.attrs[layout.ROOT_ATTR])
    history = list(header.get("history", []))
    history.append({"how": how, "sources": [p.reader.path for p in parts], "time_s": time.time()})
    root.attrs[layout.ROOT_ATTR] = {
        **header,
        "schema_version": SCHEMA_VERSION,
        "schema": schema.to_json(),
        "history": history,
    }
    return psnr


def _raw_info(reader: StoreReader, episode: int) -> str:
    """The episode record exactly as stored (so a migrated store keeps its fingerprint)."""
    return str(reader._root[layout.EPISODE_INFO][episode])


def _copy_frames(key: str, array: zarr.Array, ranges: list, dest: Path, bar: tqdm) -> float | None:
    """Frames into the new array: the same bytes where the frame codecs agree, otherwise
    decoded and re-encoded (then the mean squared error to the old frames is returned)."""
    spec = KeySpec.from_json(array.attrs["spec"])
    out = frame_files(dest, key, spec, array)
    row, squared, counted = 0, 0.0, 0
    for part, _episode, start, stop in ranges:
        if key not in part.reader.schema.keys:  # a store without this key: fill rows
            for _ in range(start, stop):
                out.write_encoded(row, None)
                row += 1
            continue
        source = part.reader.frame_files(key)
        same = _codec_dicts(part.reader.array(key)) == _codec_dicts(array)
        for r in range(start, stop):
            data = source.read_encoded(r)
            if not same and data is not None:
                frame = source.codec.decode(data)
                data = out.encode(frame)
                if data is not None:
                    diff = out.codec.decode(data).astype(np.float64) - frame
                    squared += float(np.mean(diff**2))
                counted += 1
            out.write_encoded(row, data)
            row += 1
            bar.update()
    out.flush()
    return squared / counted if counted else None


def _codec_dicts(array: zarr.Array) -> list[dict[str, Any]]:
    return [c.to_dict() for c in frame_codecs(array)]


def _copy_rows(key: str, array: zarr.Array, ranges: list) -> None:
    spec = KeySpec.from_json(array.attrs["spec"])
    pending, written = [], 0

    def flush() -> None:
        nonlocal pending, written
        if pending:
            block = np.concatenate(pending)
            array[written : written + len(block)] = block
            written += len(block)
            pending = []

    for part, _episode, start, stop in ranges:
        if key in part.reader.schema.keys:
            pending.append(part.reader.read_rows(key, start, stop))
        else:
            fill = np.nan if spec.is_float else 0
            pending.append(np.full((stop - start, *spec.shape), fill, dtype=spec.dtype))
        if sum(len(p) for p in pending) >= _LOWDIM_BLOCK_ROWS:
            flush()
    flush()


def _verify(dest: Path, parts: list[_Part], same_frames: bool) -> int:
    """Full validation of the new store; for byte copies, every frame's bytes compared."""
    from robot_learning.store.validate import validate  # validate imports the reader

    problems = validate(dest)
    if problems:
        raise StoreError(
            f"{dest}: the rebuilt store does not validate ({problems[0]}; "
            f"{len(problems)} problems); the original is untouched"
        )
    built = StoreReader(dest)
    expected = sum(len(p.episodes) for p in parts)
    if built.num_episodes != expected:
        raise StoreError(f"{dest}: {built.num_episodes} episodes rebuilt, expected {expected}")
    if same_frames and len(parts) == 1:
        source = parts[0].reader
        if built.fingerprint() != source.fingerprint():
            raise StoreError(f"{dest}: episode records differ from {source.path}")
        for key, spec in source.schema.keys.items():
            if spec.is_image and _frames_digest(source, key) != _frames_digest(built, key):
                raise StoreError(f"{dest}: frames of {key!r} differ from {source.path}")
    return built.num_episodes


def _frames_digest(reader: StoreReader, key: str) -> str:
    files = reader.frame_files(key)
    digest = hashlib.sha256()
    rows = int(reader.stream_ends(reader.spec(key).stream)[-1]) if reader.num_episodes else 0
    for row in range(rows):
        digest.update(files.read_encoded(row) or b"\0fill")
    return digest.hexdigest()


def _usage(roots: list[Path]) -> tuple[int, int]:
    sizes = [p.stat().st_size for r in roots for p in r.rglob("*") if p.is_file()]
    return sum(sizes), len(sizes)


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories atomically (renameat2 RENAME_EXCHANGE)."""
    if LIBC is None or not hasattr(LIBC, "renameat2"):
        raise StoreError("in-place rebuilds need Linux renameat2; rebuild into a new path (--to)")
    at_fdcwd = -100
    if LIBC.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE):
        errno = ctypes.get_errno()
        raise StoreError(
            f"{b}: atomic exchange with {a} failed ({os.strerror(errno)}); the original store "
            f"is untouched; rebuild into a new path (--to) instead"
        )


def is_current_layout(path: str | os.PathLike[str]) -> bool:
    """True when every image array of the store is sharded (nothing to migrate)."""
    reader = StoreReader(path)
    return all(
        is_sharded(reader.array(k)) for k, spec in reader.schema.keys.items() if spec.is_image
    )
