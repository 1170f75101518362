"""Run by the LeRobot side environment (tests/store/lerobot_env.py), not by the project:
load a dataset directory with LeRobot's own ``LeRobotDataset`` and print, as JSON, what
LeRobot sees, for the test to compare with the store it came from.

Usage: python lerobot_check.py DATASET_DIR ITEM_INDEX...

LeRobot cannot decode video beside the CPU torch here, so its decoder function is replaced
by a PyAV one with the same contract (frames nearest the query times, within tolerance,
(N, C, H, W) float in [0, 1]); everything else, metadata, parquet, indices, episode
boundaries, padding, tasks and stats, is LeRobot's code.
"""

import json
import sys
from pathlib import Path

import av
import numpy as np
import torch
from lerobot.datasets import lerobot_dataset
from lerobot.datasets.compute_stats import aggregate_stats, get_feature_stats
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import dataset_to_policy_features, unflatten_dict


def decode_with_pyav(video_path, timestamps, tolerance_s, backend=None):
    with av.open(str(video_path)) as container:
        frames = [
            (float(f.time), f.to_ndarray(format="rgb24"))
            for f in container.decode(container.streams.video[0])
        ]
    times = np.array([t for t, _ in frames])
    out = []
    for ts in timestamps:
        nearest = int(np.argmin(np.abs(times - ts)))
        if abs(times[nearest] - ts) > tolerance_s:
            raise AssertionError(
                f"{video_path}: no frame within {tolerance_s} s of {ts} (nearest {times[nearest]})"
            )
        out.append(frames[nearest][1])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def tolist(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def main() -> None:
    root, items = Path(sys.argv[1]), [int(i) for i in sys.argv[2:]]
    lerobot_dataset.decode_video_frames = decode_with_pyav
    ds = LeRobotDataset("local/export", root=root)
    fps = ds.fps
    action_deltas = [-1 / fps, 0.0, 1 / fps]
    windowed = LeRobotDataset("local/export", root=root, delta_timestamps={"action": action_deltas})
    # The rows as LeRobot loaded them (its features, its parquet reading), without its torch
    # transform: that makes float32 tensors of float64 values (torch.tensor's default dtype).
    table = ds.hf_dataset.with_format(None)
    columns = {}
    for name, feature in ds.features.items():
        if feature["dtype"] in ("video", "image", "string"):
            continue
        columns[name] = list(table[name])
    recomputed = {}
    for name, values in columns.items():
        array = np.asarray(values, dtype=np.float64)
        stats = get_feature_stats(array, axis=0, keepdims=array.ndim == 1)
        recomputed[name] = {k: tolist(v) for k, v in stats.items()}
    episodes = ds.meta.episodes
    per_episode = []
    import pyarrow.parquet as pq

    episodes_table = pq.read_table(sorted((root / "meta/episodes").glob("*/*.parquet"))[0])
    for row in episodes_table.to_pylist():
        flat = {k[len("stats/") :]: np.asarray(v) for k, v in row.items() if k.startswith("stats/")}
        per_episode.append(unflatten_dict(flat))
    aggregated = aggregate_stats(per_episode)
    items_out = []
    for index in items:
        item = ds[index]
        window = windowed[index]
        items_out.append(
            {
                "index": index,
                "episode_index": int(item["episode_index"]),
                "frame_index": int(item["frame_index"]),
                "timestamp": float(item["timestamp"]),
                "task": item["task"],
                "images": {
                    k: (item[k] * 255).round().to(torch.uint8).permute(1, 2, 0).tolist()
                    for k in ds.meta.camera_keys
                },
                "action_window": window["action"].tolist() if "action" in ds.features else None,
                "action_is_pad": window["action_is_pad"].tolist()
                if "action" in ds.features
                else None,
            }
        )
    print(
        json.dumps(
            {
                "fps": fps,
                "num_frames": ds.num_frames,
                "num_episodes": ds.num_episodes,
                "features": {
                    k: {"dtype": v["dtype"], "shape": list(v["shape"])}
                    for k, v in ds.features.items()
                },
                "camera_keys": ds.meta.camera_keys,
                "policy_features": {
                    k: [str(v.type), list(v.shape)]
                    for k, v in dataset_to_policy_features(ds.features).items()
                },
                "tasks": {str(task): int(row.task_index) for task, row in ds.meta.tasks.iterrows()},
                "episodes": [
                    {
                        k: tolist(episodes[i][k])
                        for k in (
                            "episode_index",
                            "length",
                            "tasks",
                            "dataset_from_index",
                            "dataset_to_index",
                        )
                    }
                    for i in range(len(episodes))
                ],
                "columns": columns,
                "stats": {
                    k: {s: tolist(v) for s, v in d.items()} for k, d in ds.meta.stats.items()
                },
                "recomputed_stats": recomputed,
                "aggregated_stats": {
                    k: {s: tolist(v) for s, v in d.items()} for k, d in aggregated.items()
                },
                "items": items_out,
            }
        )
    )


if __name__ == "__main__":
    main()
