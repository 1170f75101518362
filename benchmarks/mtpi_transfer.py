"""MT-pi against the robot-only policies, closed loop in the simulator: the two comparisons
of the MT-pi issue, each from one store.

- ``few-shot`` (lift): 10 scripted robot demos (seeds 0-9) + ``--hand-videos`` hand videos
  (seeds from 5000). MT-pi learns from both; ACT and Diffusion from the same 10 robot demos.
- ``transfer-lift`` and ``transfer-push``: a variation only the hand videos show. The robot
  demos' cubes (lift) or targets (push) lie in the ``robot`` region only, the hand videos'
  only in the ``novel`` one (``sim/tasks/lift.py``, ``sim/tasks/push.py``); MT-pi learns
  from both, Diffusion from the robot demos; both are evaluated on the novel region.

The robot demos film front, wrist and side (96x128), the hand videos front and side; the
store keeps each episode's cameras. MT-pi trains on front + side (it triangulates), ACT and
Diffusion on front + wrist (what their ``sim`` presets are tuned on). Training is the ``sim``
preset with ``--steps`` (default: the preset's), one CPU thread per run, two runs side by
side; evaluation on 50 seeds from 100000 that no episode used.

Hours on the 2-core CPU: ``--work DIR`` keeps stores, checkpoints and reports, and a rerun
only does what is missing. Prints one table; every number is also in DIR/*.json.
Run: ``python -m benchmarks.mtpi_transfer [--comparisons few-shot transfer-lift ...]
[--episodes 50]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.policy_success import evaluate, run, train_runs

ROBOT_CAMERAS = ("front", "wrist", "side")
HAND_CAMERAS = ("front", "side")
POLICY_CAMERAS = {"mtpi": HAND_CAMERAS, "act": ("front", "wrist"), "diffusion": ("front", "wrist")}
HAND_SEED = 5000


def _transfer(task: str, option: str) -> tuple:
    """Robot demos in the robot region, hand videos and evaluation in the novel one."""
    robot, novel = [f"{option}=robot"], [f"{option}=novel"]
    return (task, robot, novel, novel, ("diffusion",))


# comparison -> (task, robot demos' task options, hand videos' options, evaluation options,
#                the robot-only policies beside MT-pi)
COMPARISONS = {
    "few-shot": ("lift", [], [], [], ("act", "diffusion")),
    "transfer-lift": _transfer("lift", "objects"),
    "transfer-push": _transfer("push", "targets"),
}


def options(flags: list[str]) -> list[str]:
    return [arg for option in flags for arg in ("--task-option", option)]


def build_store(work: Path, name: str, demos: int, hand_videos: int) -> Path:
    task, robot_opts, hand_opts, _, _ = COMPARISONS[name]
    store = work / f"{name}.zarr"
    if store.exists():
        return store
    partial = work / f"{name}.partial.zarr"  # renamed when complete: a rerun never reuses half
    common = ["--task", task, "--store", str(partial), "--size", "96x128"]
    run(["sim", "collect", *common, "--episodes", str(demos), "--seed", "0",
         "--cameras", *ROBOT_CAMERAS, *options(robot_opts)])  # fmt: skip
    run(["sim", "collect", "--embodiment", "hand", *common, "--episodes", str(hand_videos),
         "--seed", str(HAND_SEED), "--cameras", *HAND_CAMERAS, *options(hand_opts)])  # fmt: skip
    run(["tracks", "label", "--store", str(partial), "--cameras", *HAND_CAMERAS])
    partial.rename(store)
    return store


def train_all(work: Path, name: str, store: Path, policies: tuple[str, ...], steps: int | None):
    """Every policy of the comparison on its own cameras, two at a time, one thread each."""
    outs = {p: work / f"{p}_{name}" for p in policies}
    runs = {}
    for policy in policies:
        cameras = json.dumps([f"camera_{c}" for c in POLICY_CAMERAS[policy]], separators=(",", ":"))
        runs[outs[policy]] = [
            *("--policy", policy, "--preset", "sim", "--store", str(store), "--cache-images"),
            *("--val-every", "2000", "--checkpoint-every", "2000", "--set", f"cameras={cameras}"),
            *(["--steps", str(steps)] if steps else []),
        ]
    train_runs(runs)
    return outs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/mtpi_transfer"))
    parser.add_argument("--comparisons", nargs="+", choices=list(COMPARISONS),
                        default=list(COMPARISONS))  # fmt: skip
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--hand-videos", type=int, default=50)
    parser.add_argument("--steps", type=int, help="training steps (default: the sim preset's)")
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.comparisons:
        task, _, _, eval_opts, baselines = COMPARISONS[name]
        store = build_store(args.work, name, args.demos, args.hand_videos)
        policies = ("mtpi", *baselines)
        checkpoints = train_all(args.work, name, store, policies, args.steps)
        for policy in policies:
            report = evaluate(checkpoints[policy], task, args.episodes, options(eval_opts),
                              args.work / f"eval_{policy}_{name}.json")  # fmt: skip
            rows.append((name, task + "".join(f" {o}" for o in eval_opts), policy, report))
    print(f"\n{'comparison':13} {'evaluated on':20} {'policy':10} {'success':>9} {'95% CI':>11}")
    for name, where, policy, r in rows:
        lo, hi = r["ci95"]
        print(
            f"{name:13} {where:20} {policy:10} {r['successes']:>4}/{r['episodes']:<4} "
            f"{100 * lo:>4.0f}-{100 * hi:<4.0f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
