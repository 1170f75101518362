"""``rl store import-lerobot``: a LeRobotDataset v3 directory -> episodes appended to a store.

An export of this project (info.json has a ``robot_learning`` section) comes back as it
left: the same keys, dtypes, codecs and episode metadata, low-dim rows bit for bit (from
the ``store.<key>`` columns), frames within the video codec's error. Any other v3 dataset
imports by its feature names: ``observation.images.<cam>`` -> ``camera_<cam>`` (JPEG),
``timestamp`` -> ``timestamp`` (seconds from the episode's start), every other numeric
feature under its own name; episodes get ``--source`` (default teleop), their task, and
success true (LeRobot records no outcome). Videos are decoded with PyAV.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robot_learning.keys import TIMESTAMP, camera_key
from robot_learning.store import lerobot_format as fmt
from robot_learning.store.episodes import EpisodeInfo
from robot_learning.store.lerobot_export import require_interop_packages
from robot_learning.store.schema import MAIN_STREAM, Codec, KeySpec, Source, StoreSchema
from robot_learning.store.video import decode_frames
from robot_learning.store.writer import StoreWriter

log = logging.getLogger(__name__)

_BLOCK_ROWS = 64  # rows appended at a time (frames of every camera decoded in step)


@dataclass(frozen=True)
class ImportSummary:
    store: Path
    first_episode: int
    episodes: int
    frames: int
    seconds: float

    def message(self) -> str:
        last = self.first_episode + self.episodes - 1
        return (
            f"{self.store}: imported {self.episodes} episodes ({self.first_episode}..{last}), "
            f"{self.frames} steps in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _Column:
    """Where a store key comes from: a parquet column, a video feature or image feature."""

    feature: str
    kind: str  # "lowdim" | "video" | "image"
    spec: KeySpec


def import_lerobot(
    dataset: str | Path, store: str | Path, *, source: str = Source.TELEOP, progress: bool = True
) -> ImportSummary:
    require_interop_packages()
    started = time.perf_counter()
    root = Path(dataset)
    info = fmt.read_info(root)
    fps = info["fps"]
    episodes = _read_parquets(root, "meta/episodes", "meta/episodes")
    episodes.sort(key=lambda row: row["episode_index"])
    if len(episodes) != info["total_episodes"]:
        raise fmt.LeRobotFormatError(
            f"{root}/meta/episodes: {len(episodes)} episode rows, "
            f"info.json says {info['total_episodes']}"
        )
    columns = _columns(root, info)
    tasks = _read_tasks(root)
    schema = StoreSchema(
        keys={k: c.spec for k, c in columns.items()}, stream_rates_hz={MAIN_STREAM: float(fps)}
    )
    data = _read_data(root, info, columns)
    ours = fmt.OUR_INFO in info
    sources = {k: _Frames(root, info, c.feature) for k, c in columns.items() if c.kind == "video"}
    frames = 0
    with StoreWriter(store, schema) as writer:
        first = writer.num_episodes
        bar = tqdm(total=len(episodes), unit="episode", desc="import-lerobot", disable=not progress)
        for row in episodes:
            frames += _import_episode(
                writer, root, row, data, columns, sources, tasks, fps, ours=ours, source=source
            )
            bar.update(1)
        bar.close()
    return ImportSummary(Path(store), first, len(episodes), frames, time.perf_counter() - started)


def _columns(root: Path, info: dict[str, Any]) -> dict[str, _Column]:
    """Store key -> where its rows come from, with the key's spec."""
    features: dict[str, dict[str, Any]] = info["features"]
    ours = info.get(fmt.OUR_INFO)
    if ours is not None:
        schema = StoreSchema.from_json(ours["schema"])
        out = {}
        for key, spec in schema.keys.items():
            if spec.is_image:
                out[key] = _Column(fmt.video_feature(key), "video", spec)
            else:
                out[key] = _Column(fmt.STORE_PREFIX + key, "lowdim", spec)
            if out[key].feature not in features:
                raise fmt.LeRobotFormatError(
                    f"{root}/{fmt.INFO_PATH}: the robot_learning schema "
                    f"names {key!r}, but feature "
                    f"{out[key].feature!r} is missing"
                )
        return out
    out = {}
    for name, feature in features.items():
        dtype, shape = feature.get("dtype"), tuple(feature.get("shape") or ())
        if name in fmt.BOOKKEEPING and name != fmt.TIMESTAMP:
            continue
        if dtype in ("video", "image"):
            cam = name.removeprefix(fmt.IMAGES_PREFIX).replace(".", "_")
            if len(shape) != 3 or shape[2] != 3:
                raise fmt.LeRobotFormatError(
                    f"{root}/{fmt.INFO_PATH}: feature {name!r} has "
                    f"shape {list(shape)}; expected [H, W, 3]"
                )
            out[camera_key(cam)] = _Column(name, dtype, KeySpec(shape, "uint8", Codec.JPEG))
        elif name == fmt.TIMESTAMP:
            out[TIMESTAMP] = _Column(
                name, "lowdim", KeySpec((), "float64", units="s from the episode's start")
            )
        elif dtype in ("string", None):
            log.warning("%s: feature %r (%s) is not imported", root, name, dtype)
        else:
            try:
                out[name] = _Column(name, "lowdim", KeySpec(shape, dtype))
            except ValueError as exc:
                raise fmt.LeRobotFormatError(
                    f"{root}/{fmt.INFO_PATH}: feature {name!r}: {exc}"
                ) from exc
    return out


def _read_parquets(root: Path, folder: str, what: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    paths = sorted((root / folder).glob("*/*.parquet"))
    if not paths:
        raise fmt.LeRobotFormatError(f"{root}/{folder}: no parquet files ({what})")
    rows = []
    for path in paths:
        try:
            table = pq.read_table(path)
        except Exception as exc:  # ArrowInvalid, OSError on damaged files
            raise fmt.LeRobotFormatError(f"{path}: unreadable parquet ({exc})") from exc
        keep = [c for c in table.column_names if not c.startswith("stats/")]
        rows += table.select(keep).to_pylist()
    return rows


def _read_tasks(root: Path) -> dict[int, str]:
    import pyarrow.parquet as pq

    path = root / fmt.TASKS_PATH
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise fmt.LeRobotFormatError(f"{path}: unreadable ({exc})") from exc
    meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    index = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    name = index[0] if index else "task"
    if name not in table.column_names or "task_index" not in table.column_names:
        raise fmt.LeRobotFormatError(
            f"{path}: expected task strings and a task_index column, found {table.column_names}"
        )
    return dict(
        zip(table.column("task_index").to_pylist(), table.column(name).to_pylist(), strict=True)
    )


def _read_data(
    root: Path, info: dict[str, Any], columns: dict[str, _Column]
) -> dict[str, np.ndarray]:
    """Every frame's rows, ordered by the global ``index``: feature -> array (N, *shape)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = [c.feature for c in columns.values() if c.kind != "video"]
    wanted += [fmt.INDEX, fmt.EPISODE_INDEX, fmt.FRAME_INDEX, fmt.TASK_INDEX]
    paths = sorted((root / "data").glob("*/*.parquet"))
    if not paths:
        raise fmt.LeRobotFormatError(f"{root}/data: no parquet files")
    tables = []
    for path in paths:
        try:
            table = pq.read_table(path, columns=wanted)
        except Exception as exc:
            raise fmt.LeRobotFormatError(
                f"{path}: unreadable, or lacks a column of {wanted} ({exc})"
            ) from exc
        tables.append(table)
    table = pa.concat_tables(tables)
    out = {}
    shapes = {c.feature: c.spec.shape for c in columns.values()}
    for name in wanted:
        column = table.column(name)
        feature = info["features"].get(name, {})
        if feature.get("dtype") == "image":
            out[name] = np.array(column.to_pylist(), dtype=object)
            continue
        values = column.combine_chunks()
        while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
            values = values.flatten()
        array = values.to_numpy(zero_copy_only=False)
        out[name] = array.reshape(len(table), *shapes.get(name, ()))
    order = np.argsort(out[fmt.INDEX], kind="stable")
    return {k: v[order] for k, v in out.items()}


class _Frames:
    """The frames of one video feature, episode after episode, decoding each file once."""

    def __init__(self, root: Path, info: dict[str, Any], feature: str) -> None:
        self.root, self.feature, self.template = root, feature, info.get("video_path")
        if not self.template:
            raise fmt.LeRobotFormatError(
                f"{root}/{fmt.INFO_PATH}: video feature {feature!r} but no video_path"
            )
        self._path: Path | None = None
        self._frames: Iterator[tuple[float, np.ndarray]] | None = None
        self._time = -np.inf  # time of the last frame taken from the open file

    def episode(self, row: dict[str, Any], fps: int) -> Iterator[np.ndarray]:
        prefix = f"videos/{self.feature}/"
        try:
            path = self.root / self.template.format(
                video_key=self.feature,
                chunk_index=row[prefix + "chunk_index"],
                file_index=row[prefix + "file_index"],
            )
            start = float(row[prefix + "from_timestamp"])
        except KeyError as exc:
            raise fmt.LeRobotFormatError(
                f"{self.root}/meta/episodes: episode {row['episode_index']} lacks {exc}"
            ) from exc
        if not path.exists():
            raise fmt.LeRobotFormatError(
                f"{path}: missing (video of {self.feature}, episode {row['episode_index']})"
            )
        if path != self._path or start <= self._time:
            self._path, self._frames, self._time = path, decode_frames(path), -np.inf
        half = 0.5 / fps
        for i in range(row["length"]):
            want = start + i / fps
            for t, frame in self._frames:
                self._time = t
                if t < want - half:
                    continue
                if t > want + half:
                    raise fmt.LeRobotFormatError(
                        f"{path}: no frame at {want:.3f} s (episode "
                        f"{row['episode_index']}, frame {i}); next is "
                        f"at {t:.3f} s"
                    )
                yield frame
                break
            else:
                raise fmt.LeRobotFormatError(
                    f"{path}: ends before {want:.3f} s (episode "
                    f"{row['episode_index']}, frame {i} of "
                    f"{row['length']})"
                )


def _import_episode(
    writer: StoreWriter,
    root: Path,
    row: dict[str, Any],
    data: dict[str, np.ndarray],
    columns: dict[str, _Column],
    sources: dict[str, _Frames],
    tasks: dict[int, str],
    fps: int,
    *,
    ours: bool,
    source: str,
) -> int:
    e, n = int(row["episode_index"]), int(row["length"])
    start, stop = int(row["dataset_from_index"]), int(row["dataset_to_index"])
    rows = np.flatnonzero(data[fmt.EPISODE_INDEX] == e)
    if (
        stop - start != n
        or len(rows) != n
        or not np.array_equal(data[fmt.FRAME_INDEX][rows], np.arange(n))
    ):
        raise fmt.LeRobotFormatError(
            f"{root}/data: episode {e} should have frames 0..{n - 1} "
            f"(rows {start}..{stop}); found {len(rows)} rows"
        )
    if ours and row.get(fmt.EPISODE_INFO_COLUMN):
        info = EpisodeInfo.from_json(row[fmt.EPISODE_INFO_COLUMN])
        begin = {
            "source": info.source,
            "task": info.task,
            "operator": info.operator,
            "notes": {
                **info.notes,
                "imported_from": {
                    "lerobot": str(root),
                    "episode_index": e,
                    "store_episode": info.index,
                },
            },
            "calibration": info.calibration,
            "start_time_s": info.start_time_s,
        }
        success = info.success
    else:
        task = tasks.get(int(data[fmt.TASK_INDEX][rows[0]]), (row.get("tasks") or [""])[0])
        begin = {
            "source": source,
            "task": task,
            "notes": {"imported_from": {"lerobot": str(root), "episode_index": e}},
        }
        success = True
    frames = {k: sources[k].episode(row, fps) for k in sources}
    writer.begin_episode(**begin)
    for offset in range(0, n, _BLOCK_ROWS):
        block = rows[offset : offset + _BLOCK_ROWS]
        batch: dict[str, np.ndarray] = {}
        for key, column in columns.items():
            if column.kind == "video":
                batch[key] = np.stack([next(frames[key]) for _ in block])
            elif column.kind == "image":
                batch[key] = np.stack([_decode_png(v) for v in data[column.feature][block]])
            else:
                batch[key] = data[column.feature][block].reshape(len(block), *column.spec.shape)
        writer.append_batch(batch)
    writer.commit(success=success)
    return n


def _decode_png(value: Any) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(value["bytes"])) as image:
        return np.asarray(image.convert("RGB"))


def register(store_subparsers: argparse._SubParsersAction) -> None:
    parser = store_subparsers.add_parser(
        "import-lerobot",
        help="a LeRobotDataset v3 directory -> episodes appended to a store",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("dataset", type=Path, help="LeRobotDataset v3 directory")
    parser.add_argument("store", help="store to append to (created when missing)")
    parser.add_argument(
        "--source",
        default=str(Source.TELEOP),
        choices=[str(s) for s in Source],
        help="source of the episodes of a dataset not exported by this project",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = import_lerobot(
        args.dataset, args.store, source=args.source, progress=sys.stderr.isatty()
    )
    print(summary.message())
    return 0
