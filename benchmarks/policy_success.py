"""Closed-loop success of ACT and Diffusion in the simulator: collect, train, evaluate.

For each task: ``rl sim collect`` 100 scripted demos (seeds 0-99, 2 cameras 96x128, 10 Hz),
``rl train --preset sim`` for each policy (one CPU thread each, two runs side by side), then
``rl eval`` on 50 seeds from 100000 that no demo used. With ``--sweep`` it also evaluates
the lift checkpoints against execution horizon (chunk steps played before re-planning,
temporal ensembling on/off, interpolated vs held targets). With ``--push-chain`` it also
trains push the longer way the README's best push figures were measured: the sim preset
trained on, stage after stage, each stage fine-tuning the last (``--init-from``: fresh
optimizer, warm-up and cosine again), and evaluates the last stage, Diffusion's also with its
chunks played 1.5x faster (``--speed 1.5``).

Hours on the 2-core CPU: reuse earlier stages with ``--work DIR`` (existing stores and
checkpoints are kept). Prints one table at the end; every number is also in DIR/*.json.
Run: ``python -m benchmarks.policy_success [--tasks lift push] [--episodes 50] [--sweep]
[--push-chain]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

POLICIES = ("act", "diffusion")
RL = [sys.executable, "-m", "robot_learning.cli"]


def run(args: list[str], log: Path | None = None, env: dict | None = None) -> None:
    print("$ rl " + " ".join(args), flush=True)
    with open(log, "w") if log else open(os.devnull, "w") as sink:
        subprocess.run(RL + args, check=True, env=env, stderr=sink if log else None)


def collect(work: Path, task: str, demos: int) -> Path:
    store = work / f"{task}_96.zarr"
    if not store.exists():
        run(
            [
                "sim",
                "collect",
                "--task",
                task,
                "--episodes",
                str(demos),
                "--size",
                "96x128",
                "--store",
                str(store),
                "--seed",
                "0",
            ]
        )
    return store


def train_runs(runs: dict[Path, list[str]]) -> None:
    """``rl train`` runs (out dir -> arguments after ``train``), two at a time, one thread
    each (2 cores; 1-thread runs scale best here), each logging to ``<out>.log``. A finished
    run is skipped and an interrupted one resumed, so a rerun only does what is missing."""
    from policies.train import saved_progress

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    progress = {out: saved_progress(out) for out in runs}
    todo = [o for o in runs if progress[o] is None or progress[o][0] < progress[o][1]]
    while todo:
        batch, todo = todo[:2], todo[2:]
        procs = []
        for out in batch:
            resume = ["--resume"] if progress[out] else []
            args = ["train", *runs[out], "--out", str(out), *resume]
            print("$ rl " + " ".join(args), flush=True)
            log = out.parent.joinpath(out.name + ".log").open("w")  # noqa: SIM115 (closed below)
            procs.append((subprocess.Popen(RL + args, env=env, stderr=log), log))
        for proc, log in procs:
            code = proc.wait()
            log.close()
            if code:
                raise SystemExit(f"training failed (exit {code}); see {log.name}")


def train_pair(work: Path, task: str, store: Path) -> dict[str, Path]:
    """ACT and Diffusion side by side on the task's store."""
    outs = {name: work / f"{name}_{task}" for name in POLICIES}
    common = ["--preset", "sim", "--store", str(store), "--cache-images", "--val-every", "500"]
    train_runs({outs[name]: ["--policy", name, *common] for name in POLICIES})
    return outs


def evaluate(checkpoint: Path, task: str, episodes: int, extra: list[str], out: Path) -> dict:
    if not out.exists():
        result = subprocess.run(
            RL
            + [
                "eval",
                "--checkpoint",
                str(checkpoint),
                "--task",
                task,
                "--episodes",
                str(episodes),
                "--json",
                *extra,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        out.write_text(result.stdout)
    return json.loads(out.read_text())


SWEEP = {
    "act": [
        ("ensemble k=0.01 (default)", []),
        ("no ensemble, execute 1", ["--no-ensemble", "--execute-steps", "1"]),
        ("no ensemble, execute 5", ["--no-ensemble", "--execute-steps", "5"]),
        ("no ensemble, execute 10", ["--no-ensemble", "--execute-steps", "10"]),
        ("no ensemble, execute 20", ["--no-ensemble", "--execute-steps", "20"]),
    ],
    "diffusion": [
        ("execute 1", ["--execute-steps", "1"]),
        ("execute 4", ["--execute-steps", "4"]),
        ("execute 8 (default)", []),
        ("execute 16", ["--execute-steps", "16"]),
        ("execute 8, held targets", ["--hold"]),
    ],
}


# Push needs far longer than the presets' budgets (README, "Measured here"): these chains gave
# the best push figures here. ACT: 22,000 steps on all 100 demos (76% on the seeds);
# Diffusion: 20,000 steps from scratch, then 10,000 more, on the 90/10 split (88%).
PUSH_CHAIN = {
    "act": [["--steps", n, "--val-fraction", "0"] for n in ("8000", "6000", "8000")],
    "diffusion": [["--steps", "20000"], ["--steps", "10000"]],
}


def train_chain(work: Path, store: Path) -> dict[str, Path]:
    """The push chains, stage by stage, ACT's and Diffusion's stage k side by side; returns
    each policy's last stage."""
    common = ["--preset", "sim", "--store", str(store), "--cache-images", "--seed", "0"]
    last: dict[str, Path] = {}
    for stage in range(max(len(chain) for chain in PUSH_CHAIN.values())):
        runs = {}
        for name, chain in PUSH_CHAIN.items():
            if stage < len(chain):
                out = work / f"{name}_push_chain{stage}"
                init = ["--init-from", str(last[name] / "checkpoint")] if name in last else []
                runs[out] = ["--policy", name, *common, *chain[stage], *init]
                last[name] = out
        train_runs(runs)
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("out/policy_success"))
    parser.add_argument("--tasks", nargs="+", default=["lift", "push", "stack"])
    parser.add_argument("--demos", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--sweep", action="store_true", help="lift: success vs execution")
    parser.add_argument("--sweep-episodes", type=int, default=20)
    parser.add_argument("--push-chain", action="store_true", help="push: the longer chains")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in args.tasks:
        store = collect(args.work, task, args.demos)
        checkpoints = train_pair(args.work, task, store)
        for name in POLICIES:
            report = evaluate(
                checkpoints[name], task, args.episodes, [], args.work / f"eval_{name}_{task}.json"
            )
            rows.append((task, name, "default", report))
    if args.push_chain:
        chains = train_chain(args.work, collect(args.work, "push", args.demos))
        for name in POLICIES:
            steps = "+".join(f"{int(stage[1]) // 1000}k" for stage in PUSH_CHAIN[name])
            report = evaluate(
                chains[name], "push", args.episodes, [], args.work / f"eval_{name}_push_chain.json"
            )
            rows.append(("push", name, f"default, chain {steps}", report))
        # Diffusion's push failures are mostly slow, not stuck: chunks played 1.5x faster
        # (chosen on tuning seeds; README) is the setting that crossed the push bar.
        report = evaluate(
            chains["diffusion"],
            "push",
            args.episodes,
            ["--speed", "1.5"],
            args.work / "eval_diffusion_push_chain_speed15.json",
        )
        rows.append(("push", "diffusion", "speed 1.5, chain", report))
    if args.sweep:
        for name in POLICIES:
            for label, extra in SWEEP[name]:
                tag = label.split(" (")[0].replace(" ", "_").replace(",", "").replace("=", "")
                report = evaluate(
                    args.work / f"{name}_lift",
                    "lift",
                    args.sweep_episodes,
                    extra,
                    args.work / f"sweep_{name}_{tag}.json",
                )
                rows.append(("lift", name, label, report))
    print(
        f"\n{'task':6} {'policy':10} {'execution':28} {'success':>9} {'95% CI':>11} "
        f"{'p50 ms':>7} {'p99 ms':>7}"
    )
    for task, name, label, r in rows:
        lo, hi = r["ci95"]
        print(
            f"{task:6} {name:10} {label:28} {r['successes']:>4}/{r['episodes']:<4} "
            f"{100 * lo:>4.0f}-{100 * hi:<4.0f}% {r['latency_ms_p50']:>7.1f} "
            f"{r['latency_ms_p99']:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
