"""Learning from interventions, round by round (HG-DAgger with a simulated operator).

Start from a weak policy trained on a few scripted demonstrations; each round then
  1. evaluates the policy alone (no operator) on unseen seeds: success rate;
  2. deploys it with the simulated operator ready to take over, recording every rollout
     into the demonstrations' store: intervention rate, share of human-controlled ticks;
  3. retrains on demonstrations + the human-controlled steps of every rollout so far.
Printed per round: success, intervention rate, human share, store size. Hours on a 2-core
CPU at the defaults; the figures in the README say which budget produced them.

    python -m benchmarks.intervention_rounds --policy act --task lift --demos 10 \\
        --rounds 3 --episodes 50 --steps 3000 --workdir out/hgdagger
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="act", choices=["act", "diffusion"])
    parser.add_argument("--task", default="lift")
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=50, help="per evaluation and deployment")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--human-weight", type=float, default=2.0)
    parser.add_argument("--size", default="96x128", help="recorded image size HxW")
    parser.add_argument("--workdir", type=Path, default=Path("out/hgdagger"))
    args = parser.parse_args()

    from data_collection.sim_collect import CollectConfig, collect
    from policies.data import DataSelection
    from policies.deploy import DeployConfig, deploy_sim
    from policies.evaluate import evaluate
    from policies.registry import preset
    from policies.train import TrainConfig, train

    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.workdir / "store.zarr"
    h, w = (int(x) for x in args.size.split("x"))
    if not store.exists():
        collect(
            CollectConfig(
                task=args.task, episodes=args.demos, store=store, image_size=(h, w), seed=0
            )
        )
    config = preset(args.policy, "sim")
    selection = DataSelection(success=None, val_fraction=0.1, human_weight=args.human_weight)
    rows = []
    for round_ in range(args.rounds + 1):
        started = time.time()
        run = args.workdir / f"round{round_}"
        if not (run / "checkpoint").exists():
            train(
                TrainConfig(
                    store=str(store),
                    out=run,
                    steps=args.steps,
                    batch_size=args.batch_size,
                    num_workers=0,
                    cache_images=True,
                    val_every=max(500, args.steps // 4),
                    checkpoint_every=args.steps,
                    selection=selection,
                ),
                config,
            )
        seed = 100_000 + 1000 * round_
        alone = evaluate(run, task=args.task, episodes=args.episodes, seed=seed)
        row = {
            "round": round_,
            "success": alone.success_rate,
            "success_ci95": alone.ci95,
            "train_s": None,
        }
        if round_ < args.rounds:
            helped = deploy_sim(
                DeployConfig(
                    checkpoint=run,
                    task=args.task,
                    episodes=args.episodes,
                    store=store,
                    seed=200_000 + 1000 * round_,
                )
            )
            row |= {
                "intervention_rate": helped.intervention_rate,
                "human_fraction": helped.human_fraction,
                "success_with_operator": helped.success_rate,
            }
        row["minutes"] = (time.time() - started) / 60
        rows.append(row)
        print(
            f"round {round_}: success alone {row['success']:.0%} "
            f"(CI {alone.ci95[0]:.0%}-{alone.ci95[1]:.0%})"
            + (
                f", interventions in {row['intervention_rate']:.0%} of episodes, human in "
                f"control {row['human_fraction']:.0%} of ticks"
                if round_ < args.rounds
                else ""
            ),
            flush=True,
        )
    (args.workdir / "rounds.json").write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "config": dataclasses.asdict(config),
                "rounds": rows,
            },
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
