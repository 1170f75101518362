"""``rl store export-lerobot``: committed episodes of a store -> a LeRobotDataset v3 directory.

What goes out (layout and names in lerobot_format): per episode, every main-stream key all
selected episodes recorded. Color cameras become AV1 videos; low-dim keys become parquet
columns, verbatim (``store.<key>``) and, for LeRobot's policies, as float32
``observation.state`` (end-effector pose and gripper width, the state this project's
policies observe) and ``action``. The frame rate is the store's step rate (it must be a
whole number of Hz, as LeRobot requires). What does not: other streams (the 100 Hz state
stream: LeRobot has one rate), depth and single-channel images (LeRobot v3 has no lossless
image feature for them); the command names what it leaves out. The directory appears
complete or not at all (written beside it, then renamed).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robot_learning.errors import InputError
from robot_learning.store import lerobot_format as fmt
from robot_learning.store.errors import StoreError, StoreInputError
from robot_learning.store.reader import StoreReader
from robot_learning.store.schema import MAIN_STREAM, Codec, StoreSchema
from robot_learning.store.video import DEFAULT_CODEC, DEFAULT_CRF, VideoWriter, video_info

log = logging.getLogger(__name__)

_FRAME_BATCH = 64  # frames decoded from the store at a time
_STATS_FRAMES = 100  # frames per episode and camera that image statistics sample
_STATS_MAX_SIDE = 150  # ...downsampled by a whole factor to at most this many pixels a side


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    episodes: int
    frames: int
    cameras: tuple[str, ...]
    skipped_keys: tuple[str, ...]
    size_bytes: int
    seconds: float

    def message(self) -> str:
        skipped = f"; not exported: {', '.join(self.skipped_keys)}" if self.skipped_keys else ""
        return (
            f"{self.out_dir}: {self.episodes} episodes, {self.frames} frames, "
            f"{len(self.cameras)} camera video(s), {self.size_bytes / 1e6:.1f} MB in "
            f"{self.seconds:.1f} s{skipped}"
        )


@dataclass(frozen=True)
class _Plan:
    fps: int
    cameras: list[str]  # store keys exported as videos
    lowdim: list[str]  # store keys exported verbatim
    skipped: list[str]
    features: dict[str, dict[str, Any]]


def export_lerobot(
    store: str | Path,
    out_dir: str | Path,
    episodes: Sequence[int] | None = None,
    *,
    fps: int | None = None,
    codec: str = DEFAULT_CODEC,
    crf: int = DEFAULT_CRF,
    robot_type: str | None = None,
    progress: bool = True,
) -> ExportSummary:
    """Write ``episodes`` (default: every committed episode not excluded) to ``out_dir``."""
    require_interop_packages()
    started = time.perf_counter()
    reader = StoreReader(store)
    chosen = list(reader.select() if episodes is None else episodes)
    if not chosen:
        raise StoreInputError(
            f"{store}: no episodes to export (none committed, or none match the filters)"
        )
    for index in chosen:
        reader.episode(index)  # IndexError names the store and the count
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise StoreInputError(f"{out_dir}: exists and is not empty; choose a new directory")
    plan = _plan(reader, chosen, fps)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        frames = _Writer(reader, plan, partial, codec=codec, crf=crf).run(chosen, progress)
        _write_info(reader, plan, partial, chosen, frames, robot_type)
        if out_dir.exists():
            out_dir.rmdir()
        partial.rename(out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return ExportSummary(
        out_dir,
        len(chosen),
        frames,
        tuple(plan.cameras),
        tuple(plan.skipped),
        size,
        time.perf_counter() - started,
    )


def require_interop_packages() -> None:
    try:
        import av  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise StoreError(
            "LeRobot export/import needs pyarrow and PyAV: "
            "pip install 'robot-learning-stack[interop]'"
        ) from exc


def _plan(reader: StoreReader, chosen: list[int], fps: int | None) -> _Plan:
    schema = reader.schema
    rate = schema.stream_rates_hz.get(MAIN_STREAM)
    if fps is None:
        if rate is None:
            raise StoreInputError(
                f"{reader.path}: the schema has no rate for stream {MAIN_STREAM!r}; pass --fps"
            )
        if abs(rate - round(rate)) > 1e-9 or round(rate) < 1:
            raise StoreInputError(
                f"{reader.path}: step rate {rate} Hz; LeRobot needs a whole "
                "number of frames per second (pass --fps to override)"
            )
        fps = int(round(rate))
    recorded = set.intersection(*(set(reader.episode(i).info.keys) for i in chosen))
    cameras, lowdim, skipped = [], [], []
    for key in schema.keys_of(MAIN_STREAM):
        spec = schema.keys[key]
        if key not in recorded:
            skipped.append(f"{key} (not recorded in every episode)")
        elif not spec.is_image:
            lowdim.append(key)
        elif (
            spec.dtype == "uint8"
            and len(spec.shape) == 3
            and spec.shape[2] == 3
            and spec.codec != Codec.DEPTH
        ):
            cameras.append(key)
        else:
            skipped.append(f"{key} ({spec.codec} {spec.dtype} {spec.shape}: no LeRobot video)")
    skipped += [
        f"{k} (stream {schema.keys[k].stream!r})"
        for k in schema.keys
        if schema.keys[k].stream != MAIN_STREAM
    ]
    for key in cameras:
        h, w, _ = schema.keys[key].shape
        if h % 2 or w % 2:
            raise StoreInputError(
                f"{reader.path}: camera {key!r} is {w}x{h}; video needs even sizes"
            )
    features: dict[str, dict[str, Any]] = {}
    for key in cameras:
        features[fmt.video_feature(key)] = {
            "dtype": "video",
            "shape": list(schema.keys[key].shape),
            "names": ["height", "width", "channels"],
        }
    if all(k in lowdim for k in fmt.STATE_KEYS):
        names = [n for k in fmt.STATE_KEYS for n in fmt.dimension_names(k, schema.keys[k].shape)]
        features[fmt.STATE] = {"dtype": "float32", "shape": [len(names)], "names": names}
    if fmt.LEROBOT_ACTION in lowdim:
        spec = schema.keys[fmt.LEROBOT_ACTION]
        names = fmt.dimension_names(fmt.LEROBOT_ACTION, spec.shape)
        features[fmt.LEROBOT_ACTION] = {"dtype": "float32", "shape": [len(names)], "names": names}
    for key in lowdim:
        spec = schema.keys[key]
        shape = list(spec.shape) or [1]
        names = fmt.dimension_names(key, spec.shape) if len(shape) == 1 else None
        features[fmt.STORE_PREFIX + key] = {"dtype": spec.dtype, "shape": shape, "names": names}
    features.update(json.loads(json.dumps(fmt.BOOKKEEPING)))
    for name in skipped:
        log.warning("%s: not exported: %s", reader.path, name)
    return _Plan(fps, cameras, lowdim, skipped, features)


class _Writer:
    """Streams episodes into chunked parquet and video files, gathering the metadata."""

    def __init__(
        self, reader: StoreReader, plan: _Plan, root: Path, *, codec: str, crf: int
    ) -> None:
        self.reader, self.plan, self.root = reader, plan, root
        self.codec, self.crf = codec, crf
        self.tasks: dict[str, int] = {}
        self.episode_rows: list[dict[str, Any]] = []
        self.stats_parts: dict[str, list[np.ndarray]] = {}
        self._data: list[dict[str, np.ndarray]] = []  # episodes waiting in the open data file
        self._data_bytes = 0
        self._data_files = 0
        self._videos: dict[str, VideoWriter] = {}
        self._video_files = dict.fromkeys(plan.cameras, 0)
        self.frames = 0

    def run(self, chosen: list[int], progress: bool) -> int:
        bar = tqdm(total=len(chosen), unit="episode", desc="export-lerobot", disable=not progress)
        try:
            for position, index in enumerate(chosen):
                self._episode(position, index)
                bar.update(1)
        finally:
            bar.close()
            for writer in self._videos.values():
                writer.close()
        self._flush_data()
        self._write_episodes()
        self._write_tasks()
        self._write_stats()
        return self.frames

    def _episode(self, position: int, index: int) -> None:
        ep = self.reader.episode(index)
        n = ep.length
        data = self.reader.read_episode(index, keys=self.plan.lowdim)
        task_index = self.tasks.setdefault(ep.info.task, len(self.tasks))
        columns: dict[str, np.ndarray] = {fmt.STORE_PREFIX + k: v for k, v in data.items()}
        if fmt.STATE in self.plan.features:
            columns[fmt.STATE] = np.concatenate(
                [data[k].reshape(n, -1) for k in fmt.STATE_KEYS], axis=1
            ).astype(np.float32)
        if fmt.LEROBOT_ACTION in self.plan.features:
            columns[fmt.LEROBOT_ACTION] = data[fmt.LEROBOT_ACTION].reshape(n, -1).astype(np.float32)
        columns[fmt.TIMESTAMP] = (np.arange(n) / self.plan.fps).astype(np.float32)
        columns[fmt.FRAME_INDEX] = np.arange(n, dtype=np.int64)
        columns[fmt.EPISODE_INDEX] = np.full(n, position, dtype=np.int64)
        columns[fmt.INDEX] = np.arange(self.frames, self.frames + n, dtype=np.int64)
        columns[fmt.TASK_INDEX] = np.full(n, task_index, dtype=np.int64)
        if self._data and self._data_bytes > fmt.DATA_FILE_MB * 1e6:
            self._flush_data()
        row: dict[str, Any] = {
            "episode_index": position,
            "tasks": [ep.info.task],
            "length": n,
            **{f"data/{k}": v for k, v in fmt.chunk_file(self._data_files).items()},
            "dataset_from_index": self.frames,
            "dataset_to_index": self.frames + n,
            fmt.EPISODE_INFO_COLUMN: ep.info.to_json(),
        }
        self._data.append(columns)
        self._data_bytes += sum(v.nbytes for v in columns.values())
        stats = {name: fmt.feature_stats(values) for name, values in columns.items()}
        for key in self.plan.cameras:
            row.update(self._video(key, index, n))
            stats[fmt.video_feature(key)] = fmt.feature_stats(self.stats_parts[key][-1], image=True)
        for name, values in columns.items():
            self.stats_parts.setdefault(name, []).append(values)
        for feature, values in stats.items():
            for stat, value in values.items():
                row[f"stats/{feature}/{stat}"] = value
        self.episode_rows.append(row)
        self.frames += n

    def _video(self, key: str, index: int, n: int) -> dict[str, Any]:
        feature = fmt.video_feature(key)
        writer = self._videos.get(key)
        if writer is not None and writer.size_bytes() > fmt.VIDEO_FILE_MB * 1e6:
            writer.close()
            self._video_files[key] += 1
            writer = None
        if writer is None:
            h, w, _ = self.reader.spec(key).shape
            path = self.root / fmt.VIDEO_PATH.format(
                video_key=feature, **fmt.chunk_file(self._video_files[key])
            )
            writer = self._videos[key] = VideoWriter(
                path, fps=self.plan.fps, width=w, height=h, codec=self.codec, crf=self.crf
            )
        first = writer.frames
        start, _ = self.reader.episode(index).rows[MAIN_STREAM]
        sample_rows = set(np.linspace(0, n - 1, num=min(n, _STATS_FRAMES)).astype(int).tolist())
        samples = []
        for offset in range(0, n, _FRAME_BATCH):
            rows = range(start + offset, start + min(n, offset + _FRAME_BATCH))
            frames = self.reader.read_frames(key, list(rows))
            for i, frame in enumerate(frames):
                writer.write(frame)
                if offset + i in sample_rows:
                    step = max(1, -(-max(frame.shape[:2]) // _STATS_MAX_SIDE))
                    samples.append(frame[::step, ::step])
        self.stats_parts.setdefault(key, []).append(np.stack(samples))
        prefix = f"videos/{feature}/"
        return {
            **{prefix + k: v for k, v in fmt.chunk_file(self._video_files[key]).items()},
            prefix + "from_timestamp": first / self.plan.fps,
            prefix + "to_timestamp": (first + n) / self.plan.fps,
        }

    def _flush_data(self) -> None:
        if not self._data:
            return
        import pyarrow.parquet as pq

        columns = {name: np.concatenate([ep[name] for ep in self._data]) for name in self._data[0]}
        table = _table(columns, self.plan.features)
        path = self.root / fmt.DATA_PATH.format(**fmt.chunk_file(self._data_files))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy")
        self._data, self._data_bytes = [], 0
        self._data_files += 1

    def _write_episodes(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for row in self.episode_rows:
            row.update({f"meta/episodes/{k}": v for k, v in fmt.chunk_file(0).items()})
        table = pa.Table.from_pylist(self.episode_rows)
        path = self.root / fmt.EPISODES_PATH.format(**fmt.chunk_file(0))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy")

    def _write_tasks(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "task_index": pa.array(list(self.tasks.values()), pa.int64()),
                "task": pa.array(list(self.tasks), pa.string()),
            }
        )
        table = table.replace_schema_metadata({b"pandas": fmt.tasks_pandas_metadata()})
        pq.write_table(table, self.root / fmt.TASKS_PATH)

    def _write_stats(self) -> None:
        stats = {}
        for name, parts in self.stats_parts.items():
            if name in self.plan.cameras:
                stats[fmt.video_feature(name)] = fmt.feature_stats(
                    np.concatenate(parts), image=True
                )
            else:
                stats[name] = fmt.feature_stats(np.concatenate(parts))
        (self.root / fmt.STATS_PATH).write_text(json.dumps(stats, indent=2))


def _table(columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]]):  # noqa: ANN202
    """Arrow columns typed as LeRobot's ``datasets`` features store them: scalars plain,
    vectors fixed-size lists, matrices nested lists."""
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        shape = features[name]["shape"]
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
        if shape == [1]:
            arrays[name] = flat
        elif len(shape) == 1:
            arrays[name] = pa.FixedSizeListArray.from_arrays(flat, shape[0])
        else:
            array = flat
            for size in reversed(shape):
                offsets = np.arange(0, len(array) + 1, size, dtype=np.int32)
                array = pa.ListArray.from_arrays(pa.array(offsets), array)
            arrays[name] = array
    return pa.table(arrays)


def _write_info(
    reader: StoreReader,
    plan: _Plan,
    root: Path,
    chosen: list[int],
    frames: int,
    robot_type: str | None,
) -> None:
    features = plan.features
    for key in plan.cameras:
        feature = fmt.video_feature(key)
        features[feature]["info"] = video_info(
            root / fmt.VIDEO_PATH.format(video_key=feature, **fmt.chunk_file(0))
        )
    exported = {k: reader.schema.keys[k] for k in plan.cameras + plan.lowdim}
    info = {
        "codebase_version": fmt.CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": len(chosen),
        "total_frames": frames,
        "total_tasks": len({reader.episode(i).info.task for i in chosen}),
        "chunks_size": fmt.CHUNKS_SIZE,
        "data_files_size_in_mb": fmt.DATA_FILE_MB,
        "video_files_size_in_mb": fmt.VIDEO_FILE_MB,
        "fps": plan.fps,
        "splits": {"train": f"0:{len(chosen)}"},
        "data_path": fmt.DATA_PATH,
        "video_path": fmt.VIDEO_PATH if plan.cameras else None,
        "features": features,
        fmt.OUR_INFO: {
            "store": reader.path,
            "fingerprint": reader.fingerprint(chosen),
            "episodes": chosen,
            "schema": StoreSchema(
                keys=exported,
                stream_rates_hz={
                    MAIN_STREAM: reader.schema.stream_rates_hz.get(MAIN_STREAM, plan.fps)
                },
            ).to_json(),
            "not_exported": plan.skipped,
        },
    }
    (root / fmt.INFO_PATH).write_text(json.dumps(info, indent=4))


def register(store_subparsers: argparse._SubParsersAction) -> None:
    from robot_learning.store.cli import add_filters

    parser = store_subparsers.add_parser(
        "export-lerobot",
        help="episodes -> a LeRobotDataset v3 directory (parquet + AV1 video)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("path", help="the store")
    parser.add_argument("out_dir", type=Path, help="new dataset directory (must not exist)")
    add_filters(parser)
    parser.add_argument("--episodes", type=int, nargs="+", help="these episodes (else filters)")
    parser.add_argument("--fps", type=int, help="override the store's step rate")
    parser.add_argument(
        "--vcodec",
        default=DEFAULT_CODEC,
        help=f"FFmpeg video encoder (default {DEFAULT_CODEC}, LeRobot's)",
    )
    parser.add_argument(
        "--crf",
        type=int,
        default=DEFAULT_CRF,
        help=f"video quality (lower: better, larger; default {DEFAULT_CRF})",
    )
    parser.add_argument("--robot-type", help="info.json robot_type, e.g. fr3")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robot_learning.store.cli import selection

    episodes = args.episodes
    if episodes is None:
        episodes = selection(args, StoreReader(args.path))
    try:
        summary = export_lerobot(
            args.path,
            args.out_dir,
            episodes,
            fps=args.fps,
            codec=args.vcodec,
            crf=args.crf,
            robot_type=args.robot_type,
            progress=sys.stderr.isatty(),
        )
    except IndexError as exc:  # an --episodes entry the store does not have
        raise InputError(str(exc)) from exc
    print(summary.message())
    return 0
