"""``rl train``, ``rl eval`` and ``rl deploy``: thin commands over policies.train,
policies.evaluate and policies.deploy."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from policies.registry import policy_names
from robot_learning.errors import InputError


def register_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a policy (ACT, diffusion, MT-pi) on a store",
        description="Train a policy on a store's robot episodes (MT-pi: and human_video "
        "episodes, on their motion tracks); writes OUT/checkpoint "
        "(safetensors + JSON) and OUT/tensorboard. Runs under torchrun for DDP.",
    )
    p.add_argument("--policy", required=True, choices=policy_names())
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--preset",
        default="default",
        help="policy preset: default (published sizes), sim (sized for the simulated "
        "workcell on a 2-core CPU), bench",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field, e.g. --set action_mode=relative",
    )
    p.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="per-rank batch size (default: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue OUT/checkpoint exactly")
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="STEP",
        help="end this run at STEP (checkpointed); --resume continues to --steps",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="CHECKPOINT",
        help="fine-tune: start from this checkpoint's weights (same policy config); the "
        "normalization comes from this run's data, the optimizer starts afresh",
    )
    p.add_argument("--task", nargs="+", help="only these tasks")
    p.add_argument(
        "--source",
        nargs="+",
        help="only these sources (default: robot sources; mtpi: also human_video)",
    )
    p.add_argument(
        "--human-weight",
        type=float,
        default=1.0,
        help="HG-DAgger: draw weight of human-controlled steps of policy/"
        "intervention episodes, relative to a teleop step (default 1)",
    )
    p.add_argument(
        "--policy-weight",
        type=float,
        default=0.0,
        help="draw weight of policy-controlled steps of those episodes (default 0)",
    )
    p.add_argument("--include-failed", action="store_true", help="also unsuccessful episodes")
    p.add_argument("--val-fraction", type=float, default=0.1, help="episodes held out")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2, help="data-loader processes")
    p.add_argument(
        "--cache-images",
        action="store_true",
        help="decode and resize every frame once into memory (small stores)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.set_defaults(func=run_train)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: expected FIELD=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[name.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def run_train(args: argparse.Namespace) -> int:
    from policies.data import DataSelection
    from policies.registry import get_policy, preset
    from policies.train import TrainConfig, saved_train_config, train
    from robot_learning.errors import Interrupted

    config = preset(args.policy, args.preset)
    overrides = parse_overrides(args.set)
    known = {f.name for f in dataclasses.fields(get_policy(args.policy).config_class)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(f"--set: {args.policy} has no field(s) {unknown}")
    config = dataclasses.replace(config, **overrides)
    # --resume continues the saved run: its length and batch size unless given again.
    saved = (saved_train_config(args.out) if args.resume else None) or {}
    cfg = TrainConfig(
        store=args.store,
        out=args.out,
        steps=args.steps or saved.get("steps") or config.train_steps,
        batch_size=args.batch_size or saved.get("batch_size") or config.batch_size,
        seed=args.seed,
        num_workers=args.workers,
        cache_images=args.cache_images,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        amp=not args.no_amp,
        resume=args.resume,
        stop_after=args.stop_after,
        init_from=args.init_from,
        selection=DataSelection(
            task=tuple(args.task) if args.task else None,
            source=tuple(args.source) if args.source else None,
            success=None if args.include_failed else True,
            val_fraction=args.val_fraction,
            human_weight=args.human_weight,
            policy_weight=args.policy_weight,
        ),
    )
    try:
        result = train(cfg, config)
    except KeyboardInterrupt:
        raise Interrupted(
            "the last periodic checkpoint is intact (--resume continues it)"
        ) from None
    if result.losses:
        last = sum(result.losses[-20:]) / len(result.losses[-20:])
        val = (
            f", validation loss {result.val_losses[max(result.val_losses)]:.4f}"
            if result.val_losses
            else ""
        )
        print(
            f"{result.checkpoint}: {result.steps} steps in {result.seconds:.0f} s, "
            f"training loss {last:.4f}{val}"
        )
    return 0


def register_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="success rate of a checkpoint in the simulator",
        description="Run seeded episodes of a task in the lockstep simulator with the policy in "
        "control; prints the success rate with a 95% confidence interval, episode "
        "lengths and inference latency.",
    )
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--task", required=True, help="lift, push or stack")
    p.add_argument(
        "--task-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task option, repeatable, as for rl sim collect (push: targets=novel, lift: "
        "objects=novel evaluate where only the hand videos went)",
    )
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="first evaluation seed (default 100000; never a training seed)",
    )
    p.add_argument(
        "--max-duration",
        type=float,
        metavar="S",
        help="seconds per episode (default: the task's limit)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--video", type=Path, help="write frame strips of the first rollouts here")
    p.add_argument("--execute-steps", type=int, help="chunk steps played before re-planning")
    p.add_argument(
        "--temporal-ensemble",
        type=float,
        metavar="K",
        help="ensemble overlapping chunks with weights exp(-K i)",
    )
    p.add_argument("--no-ensemble", action="store_true", help="turn temporal ensembling off")
    add_samples_argument(p)
    add_speed_argument(p)
    p.add_argument(
        "--hold",
        action="store_true",
        help="hold each chunk step instead of interpolating (for comparison)",
    )
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from policies.evaluate import DEFAULT_EVAL_SEED, dumps, evaluate, format_report
    from robot_learning.sim.cli import parse_task_options

    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")
    changes: dict[str, Any] = {"interpolate": not args.hold}
    if args.execute_steps:
        changes["execute_steps"] = args.execute_steps
    if args.temporal_ensemble is not None:
        changes["temporal_ensemble_k"] = args.temporal_ensemble
    if args.no_ensemble:
        changes["temporal_ensemble_k"] = None
    changes.update(speed_change(args))
    report = evaluate(
        args.checkpoint,
        task=args.task,
        episodes=args.episodes,
        seed=DEFAULT_EVAL_SEED if args.seed is None else args.seed,
        execution_changes=changes,
        inference_changes=inference_changes(args),
        video_dir=args.video,
        progress=True,
        max_duration_s=args.max_duration,
        task_options=parse_task_options(args.task_option),
    )
    print(dumps(report) if args.json else format_report(report))
    for path in report.videos if not args.json else []:
        print(f"  {path}")
    return 0


def add_samples_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="draw N chunks per query: Diffusion plays their medoid, MT-pi their mean "
        "(default: the checkpoint's num_samples, 1 unless trained with --set num_samples=N)",
    )


def inference_changes(args: argparse.Namespace) -> dict[str, Any]:
    if args.samples is None:
        return {}
    if args.samples < 1:
        raise InputError(f"--samples must be >= 1, got {args.samples}")
    return {"num_samples": args.samples}


def add_speed_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="play chunks X times faster than predicted (default 1: the demonstrations' "
        "speed; the safety filter's limits still apply)",
    )


def speed_change(args: argparse.Namespace) -> dict[str, Any]:
    from robot_learning.runtime.executor import SPEED_RANGE

    if args.speed is None:
        return {}
    low, high = SPEED_RANGE
    if not low <= args.speed <= high:
        raise InputError(f"--speed must be in [{low:g}, {high:g}], got {args.speed}")
    return {"speed": args.speed}


def register_deploy(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deploy",
        help="run a checkpoint on the (simulated) arm with an operator ready to "
        "take over; record every rollout",
        description="Deploy a policy through the runtime: control loop with the safety filter, "
        "intervention arbiter, recording as policy/intervention episodes. --sim "
        "drives the simulated workcell (lockstep, or paced to the wall clock with "
        "--realtime) with a simulated operator; the real arm runs through the ROS 2 "
        "deployment graph.",
    )
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument(
        "--sim",
        action="store_true",
        required=True,
        help="the simulated workcell (the real arm: launch/deploy.yaml)",
    )
    p.add_argument("--task", required=True, help="lift, push or stack")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=200_000, help="first episode seed")
    p.add_argument("--store", type=Path, help="record rollouts here (created or appended)")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace to the wall clock; inference on its own thread",
    )
    p.add_argument("--no-operator", action="store_true", help="nobody takes over")
    p.add_argument(
        "--no-latency-compensation",
        action="store_true",
        help="start each chunk when it arrives (for comparison)",
    )
    p.add_argument("--max-duration", type=float, metavar="S")
    add_samples_argument(p)
    add_speed_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    from policies.deploy import DeployConfig, deploy_sim

    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")
    changes = {"latency_compensation": False} if args.no_latency_compensation else {}
    changes.update(speed_change(args))
    config = DeployConfig(
        checkpoint=args.checkpoint,
        task=args.task,
        episodes=args.episodes,
        seed=args.seed,
        store=args.store,
        realtime=args.realtime,
        operator=not args.no_operator,
        execution_changes=changes,
        inference_changes=inference_changes(args),
        max_duration_s=args.max_duration,
    )
    report = deploy_sim(config)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    lo, hi = report.ci95
    print(
        f"{report.task}: {report.successes}/{report.episodes} successful "
        f"({report.success_rate:.0%}, 95% CI {lo:.0%}-{hi:.0%}); "
        f"{report.interventions} takeovers in {report.episodes_with_intervention} episodes, "
        f"human in control {report.human_fraction:.0%} of ticks"
    )
    if report.recorded:
        print(f"recorded episodes {report.recorded} in {args.store}")
    for fault in report.faults:
        print(f"  fault: {fault}")
    if report.safety_counts:
        print(f"  safety filter: {report.safety_counts}")
    return 0
