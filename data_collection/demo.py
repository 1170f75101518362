"""``rl demo``: the stack's main job on the simulated workcell, end to end so far.

1. render the workcell so a person can look at it (PNG frames);
2. collect scripted-expert demonstrations of every task into one store, through the teleop
   path, with a progress bar;
3. inspect and validate the store, curate (exclude failed demos), compute normalization
   statistics, and draw a training batch through the sampler.
Outputs go to ``--out`` (default ``out/demo``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from data_collection.sim_collect import CollectConfig, collect
from robot_learning.errors import ExitCode
from robot_learning.keys import ACTION, EE_POSE, camera_key

TASKS = ("lift", "push", "stack")


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the pipeline on the simulated workcell")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.add_argument("--episodes", type=int, default=8, help="episodes per task")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    from robot_learning.sim.cli import ALL_CAMERAS, render_views
    from robot_learning.store import StoreReader
    from robot_learning.store.curation import set_excluded
    from robot_learning.store.sampler import SequenceDataset
    from robot_learning.store.validate import validate

    started = time.perf_counter()
    store = args.out / "demos.zarr"
    if store.exists():
        shutil.rmtree(store)
    print(f"== 1/4 render the workcell -> {args.out / 'views'}")
    written, _ = render_views(
        task="stack", seed=0, out=args.out / "views", frames=3, cameras=ALL_CAMERAS
    )
    print(f"   {len(written)} frames")
    print(f"== 2/4 collect {args.episodes} scripted-expert episodes per task -> {store}")
    for i, task in enumerate(TASKS):
        summary = collect(
            CollectConfig(task=task, episodes=args.episodes, store=store, seed=1000 * i)
        )
        print(
            f"   {task}: {summary.successes}/{summary.episodes} successful, {summary.steps} steps"
        )
    print("== 3/4 inspect, validate and curate the store")
    reader = StoreReader(store)
    summary = reader.summary()
    print(
        f"   {summary['episodes']} episodes, {summary['steps']} steps, "
        f"{summary['size_bytes'] / 1e6:.1f} MB, tasks {summary['tasks']}"
    )
    problems = validate(store)
    print(f"   validate: {problems if problems else 'ok'}")
    failed = reader.select(success=False)
    if failed:
        set_excluded(store, failed, excluded=True, reason="expert failed (demo curation)")
    print(f"   excluded {len(failed)} failed episode(s)")
    print("== 4/4 draw a training batch (obs horizon 2, action horizon 16)")
    dataset = SequenceDataset(
        store,
        obs_keys=[camera_key("front"), camera_key("wrist"), EE_POSE],
        action_keys=[ACTION],
        obs_horizon=2,
        action_horizon=16,
        select={"task": "lift"},
        normalization={EE_POSE: "mean_std", ACTION: "min_max"},
    )
    batch = next(iter(DataLoader(dataset, batch_size=8, shuffle=True)))
    print("   " + json.dumps({k: list(v.shape) for k, v in batch.items()}))
    print(
        f"done in {time.perf_counter() - started:.0f} s; store at {store}; "
        f"inspect with: rl store info {store}"
    )
    return ExitCode.FAILURE if problems else ExitCode.OK
