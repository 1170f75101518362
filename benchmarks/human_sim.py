"""Simulated human videos and motion tracks: collection speed, success, and track error.

Setting: the hand stand-in's scripted demonstrator on lift and push, the fixed front and side
cameras at 240x320 recorded at 10 Hz (``rl sim collect --embodiment hand``), then
``rl tracks label`` with the simulated tracker's default error model; the track error is the
2D distance of the three human track points to their ground-truth projection, over frames
where the tracker reported the hand. Run: ``python -m benchmarks.human_sim``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from data_collection.motion_tracks.label import LabelConfig, label_store
from data_collection.sim_human import HandCollectConfig, collect_hand


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10, help="per task")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "human.zarr"
        for task in ("lift", "push"):
            summary = collect_hand(
                HandCollectConfig(task=task, episodes=args.episodes, store=store, seed=100),
                progress=False,
            )
            print(
                f"collect hand {task}: {summary.successes}/{summary.episodes} successful, "
                f"{summary.steps} steps in {summary.wall_s:.1f} s = "
                f"{summary.episodes / summary.wall_s:.2f} episodes/s, "
                f"{summary.steps / summary.wall_s:.1f} recorded steps/s"
            )
        start = time.perf_counter()
        report = label_store(LabelConfig(store=store, exclude_flagged=False), progress=False)
        wall = time.perf_counter() - start
        print(f"label tracks: {len(report.human_episodes)} episodes in {wall:.1f} s")
        for line in report.lines()[1:]:
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
