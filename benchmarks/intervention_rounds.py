"""Learning from interventions, round by round (HG-DAgger with a simulated operator).

Start from a weak policy trained on a few scripted demonstrations; each round then
  1. evaluates the policy alone (no operator) on unseen seeds: success rate;
  2. deploys it with the simulated operator ready to take over, recording every rollout
     into the demonstrations' store: intervention rate, share of human-controlled ticks;
  3. retrains on demonstrations + the human-controlled steps of every rollout so far.
The loop is ``policies.intervention_rounds.run_rounds`` (``rl demo`` runs it too, smaller).
Printed per round: success, intervention rate, human share. Hours on a 2-core CPU at the
defaults; the figures in the README say which budget produced them.

    python -m benchmarks.intervention_rounds --policy act --task lift --demos 10 \\
        --rounds 3 --episodes 50 --steps 4000 --workdir out/hgdagger
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="act", choices=["act", "diffusion"])
    parser.add_argument("--task", default="lift")
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=50, help="deployments per round")
    parser.add_argument(
        "--eval-episodes",
        type=int,
        help="evaluation episodes per round, the same seeds every round (default: --episodes)",
    )
    parser.add_argument("--steps", type=int, default=4000, help="training steps per round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--human-weight", type=float, default=2.0)
    parser.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        help="round 0's learning-rate schedule (default: the preset's)",
    )
    parser.add_argument(
        "--fine-tune-lr-schedule",
        choices=["constant", "cosine", "preset"],
        default="constant",
        help="the schedule of every fine-tuning round after round 0 (preset: round 0's)",
    )
    parser.add_argument("--size", default="96x128", help="recorded image size HxW")
    parser.add_argument("--workdir", type=Path, default=Path("out/hgdagger"))
    parser.add_argument(
        "--initial-checkpoint",
        type=Path,
        help="round 0's policy, trained elsewhere on the same --demos (skips its training)",
    )
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="retrain every round from fresh weights (default: from the previous round's)",
    )
    args = parser.parse_args()

    from data_collection.sim_collect import CollectConfig, collect
    from policies.data import DataSelection
    from policies.intervention_rounds import RoundsConfig, run_rounds
    from policies.registry import preset

    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.workdir / "store.zarr"
    h, w = (int(x) for x in args.size.split("x"))
    if not store.exists():
        collect(
            CollectConfig(
                task=args.task, episodes=args.demos, store=store, image_size=(h, w), seed=0
            )
        )
    policy = preset(args.policy, "sim")
    if args.lr_schedule:
        policy = dataclasses.replace(policy, lr_schedule=args.lr_schedule)
    config = RoundsConfig(
        store=store,
        workdir=args.workdir,
        policy=policy,
        task=args.task,
        rounds=args.rounds,
        eval_episodes=args.eval_episodes or args.episodes,
        deploy_episodes=args.episodes,
        steps=args.steps,
        batch_size=args.batch_size,
        selection=DataSelection(success=None, val_fraction=0.1, human_weight=args.human_weight),
        fine_tune=not args.from_scratch,
        fine_tune_lr_schedule=(
            None if args.fine_tune_lr_schedule == "preset" else args.fine_tune_lr_schedule
        ),
        initial_checkpoint=args.initial_checkpoint,
    )
    results = run_rounds(config, on_round=lambda r: print(r.summary(), flush=True))
    rows = [
        {
            "round": r.round,
            "success": r.evaluation.success_rate,
            "success_ci95": r.evaluation.ci95,
            "minutes": (r.train_s + r.eval_s + r.deploy_s) / 60,
        }
        | (
            {
                "intervention_rate": r.deployment.intervention_rate,
                "takeovers_per_episode": r.deployment.takeovers_per_episode,
                "takeover_reasons": r.deployment.takeover_reasons,
                "human_fraction": r.deployment.human_fraction,
                "success_with_operator": r.deployment.success_rate,
            }
            if r.deployment
            else {}
        )
        for r in results
    ]
    (args.workdir / "rounds.json").write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "config": dataclasses.asdict(config.policy),
                "rounds": rows,
            },
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
