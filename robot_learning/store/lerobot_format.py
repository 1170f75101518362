"""The LeRobotDataset v3 layout, as far as export and import need it, in one place.

```
DIR/
  meta/info.json                       fps, features (name -> dtype, shape, names), totals,
                                       path templates; ours adds "robot_learning" (schema)
  meta/stats.json                      per feature: min max mean std count q01 q10 q50 q90 q99
                                       (images: per channel, shape (3, 1, 1), scaled to [0, 1])
  meta/tasks.parquet                   task string (the index) -> task_index
  meta/episodes/chunk-000/file-000.parquet   a row per episode: length, tasks, row range,
                                       its data file, per camera its video file and time span
  data/chunk-000/file-000.parquet      a row per frame: every non-video feature
  videos/<feature>/chunk-000/file-000.mp4    episodes one after another, AV1 (SVT-AV1)
```
Feature names follow LeRobot's conventions: ``observation.images.<camera>`` (video),
``observation.state`` and ``action`` (float32 vectors with per-dimension names) and the
five bookkeeping columns. Every main-stream low-dim key of the store also travels verbatim
as ``store.<key>`` (its own dtype), so importing an export gives back the same numbers bit
for bit; LeRobot's policies only look at ``observation.*`` and ``action``, so it ignores them.
Checked against LeRobot 0.4.4's own loader (tests/store/test_lerobot.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from robot_learning.errors import InputError
from robot_learning.keys import ACTION, CAMERA_PREFIX, EE_POSE, GRIPPER_WIDTH, JOINT_POSITIONS

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILE_MB = 100  # a data or episodes parquet file is closed past this size
VIDEO_FILE_MB = 200  # a video file is closed past this size (between episodes)

IMAGES_PREFIX = "observation.images."
STATE = "observation.state"
LEROBOT_ACTION = "action"
STORE_PREFIX = "store."  # verbatim copies of the store's low-dim keys
# LeRobot's bookkeeping columns: episode-relative time, position in the episode, episode,
# position in the dataset, task.
TIMESTAMP = "timestamp"
FRAME_INDEX = "frame_index"
EPISODE_INDEX = "episode_index"
INDEX = "index"
TASK_INDEX = "task_index"
BOOKKEEPING = {
    TIMESTAMP: {"dtype": "float32", "shape": [1], "names": None},
    FRAME_INDEX: {"dtype": "int64", "shape": [1], "names": None},
    EPISODE_INDEX: {"dtype": "int64", "shape": [1], "names": None},
    INDEX: {"dtype": "int64", "shape": [1], "names": None},
    TASK_INDEX: {"dtype": "int64", "shape": [1], "names": None},
}
OUR_INFO = "robot_learning"  # our own section of info.json
EPISODE_INFO_COLUMN = "robot_learning/info"  # our EpisodeInfo JSON, a column of meta/episodes
# The state the project's policies observe (policies.features.STATE_KEYS), flattened.
STATE_KEYS = (EE_POSE, GRIPPER_WIDTH)
STATS = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
# Per-dimension names of the keys LeRobot users see in observation.state and action.
DIMENSION_NAMES = {
    EE_POSE: ["x", "y", "z", "qx", "qy", "qz", "qw"],
    ACTION: ["x", "y", "z", "qx", "qy", "qz", "qw", "gripper"],
    GRIPPER_WIDTH: ["gripper_width"],
    JOINT_POSITIONS: [f"joint_{i}" for i in range(1, 8)],
}


class LeRobotFormatError(InputError):
    """A directory that is not a LeRobotDataset v3 this code can read, or a store that cannot
    become one; the message names the file or key and what to do."""


def video_feature(camera_key: str) -> str:
    """``camera_front`` -> ``observation.images.front``."""
    name = camera_key[len(CAMERA_PREFIX) :] if camera_key.startswith(CAMERA_PREFIX) else camera_key
    return IMAGES_PREFIX + name


def dimension_names(key: str, shape: tuple[int, ...]) -> list[str]:
    known = DIMENSION_NAMES.get(key)
    size = int(np.prod(shape, dtype=np.int64))
    if known is not None and len(known) == size:
        return [f"{key}.{n}" for n in known]
    return [f"{key}.{i}" for i in range(size)]


def chunk_file(counter: int) -> dict[str, int]:
    """The n-th file of a kind -> its (chunk_index, file_index), CHUNKS_SIZE files a chunk."""
    return {"chunk_index": counter // CHUNKS_SIZE, "file_index": counter % CHUNKS_SIZE}


def feature_stats(values: np.ndarray, *, image: bool = False) -> dict[str, Any]:
    """LeRobot's statistics of one feature over frames (time first).

    Low-dim: element-wise over time (a scalar feature gives shape (1,); a matrix feature,
    as LeRobot does it, per element of its last axis). Images (N, H, W, 3)
    uint8: per channel, scaled to [0, 1], shape (3, 1, 1). Quantiles are exact order
    statistics, the smallest value with at least that fraction of the data at or below it
    (LeRobot estimates the same from a 5,000-bin histogram).
    """
    if image:
        data = values.astype(np.float64).reshape(-1, values.shape[-1]) / 255.0
        reduce = lambda f, **kw: f(data, axis=0, **kw).reshape(-1, 1, 1)  # noqa: E731
        count = len(values)
    else:
        data = values.astype(np.float64).reshape(len(values), -1)
        if values.ndim > 2:  # LeRobot's convention: all but the last axis are samples
            data = data.reshape(-1, values.shape[-1])
        reduce = lambda f, **kw: f(data, axis=0, **kw)  # noqa: E731
        count = len(values)
    out: dict[str, Any] = {
        "min": reduce(np.min),
        "max": reduce(np.max),
        "mean": reduce(np.mean),
        "std": reduce(np.std),
        "count": np.array([count]),
    }
    for name, q in QUANTILES.items():
        out[name] = reduce(np.quantile, q=q, method="inverted_cdf")
    return {k: np.asarray(v).tolist() for k, v in out.items()}


def read_info(root: Path) -> dict[str, Any]:
    path = root / INFO_PATH
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise LeRobotFormatError(f"{root}: not a LeRobotDataset (no {INFO_PATH})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LeRobotFormatError(f"{path}: unreadable JSON ({exc})") from exc
    version = str(info.get("codebase_version", "")) if isinstance(info, dict) else ""
    if not version.startswith("v3."):
        raise LeRobotFormatError(
            f"{path}: codebase_version {version or 'missing'!r}; only LeRobotDataset v3 is read "
            "(convert older ones with LeRobot's convert_dataset_v21_to_v30)"
        )
    for field in ("fps", "features", "data_path", "total_episodes"):
        if field not in info:
            raise LeRobotFormatError(f"{path}: no {field!r} field")
    return info


def tasks_pandas_metadata() -> bytes:
    """The pandas metadata that makes ``pandas.read_parquet`` give the task strings as the
    index, as LeRobot expects (``tasks.loc[task].task_index``), written without pandas."""
    columns = [
        {
            "name": "task_index",
            "field_name": "task_index",
            "pandas_type": "int64",
            "numpy_type": "int64",
            "metadata": None,
        },
        {
            "name": "task",
            "field_name": "task",
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        },
    ]
    return json.dumps(
        {
            "index_columns": ["task"],
            "column_indexes": [
                {
                    "name": None,
                    "field_name": None,
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": {"encoding": "UTF-8"},
                }
            ],
            "columns": columns,
            "creator": {"library": "pyarrow", "version": "robot_learning"},
            "pandas_version": "2.2.0",
        }
    ).encode()
