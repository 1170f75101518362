"""Learning from interventions, round by round (HG-DAgger with a simulated operator).

Round ``r`` of ``run_rounds``:
  1. train (round 0 may bring its checkpoint instead) on the store: the demonstrations and the
     human-controlled steps of every rollout recorded so far (``DataSelection.human_weight``),
     from the previous round's weights (``fine_tune``; the aggregated data, not only the new
     rollouts, so the policy keeps what it knew);
  2. evaluate the policy alone, no operator, on unseen seeds (the same ones every round, so
     rounds are compared on the same cubes): success rate;
  3. deploy it with the simulated operator ready to take over, recording every rollout into
     the same store (skipped in the last round): intervention rate, share of human ticks.
``benchmarks/intervention_rounds.py`` (hours, the README's figures) and ``rl demo`` (minutes)
both run this loop; only their budgets differ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from policies.config import PolicyConfig
from policies.data import DataSelection
from policies.deploy import DeployConfig, DeployReport, deploy_sim
from policies.evaluate import DEFAULT_EVAL_SEED, EvalReport, evaluate
from policies.train import TrainConfig, train

log = logging.getLogger(__name__)

DEPLOY_SEED = 200_000  # deployment rollouts: far from collection (0...) and evaluation seeds
SEEDS_PER_ROUND = 1000  # each round's deployment seeds are new ones (they become training data)
# Demonstrations and every rollout, failed ones too: the human's corrections in a failed
# rollout still teach (HG-DAgger); the policy's own steps are left out (policy_weight 0).
ROUNDS_SELECTION = DataSelection(success=None, val_fraction=0.1, human_weight=2.0)


@dataclass(frozen=True)
class RoundsConfig:
    store: Path  # demonstrations; every deployment rollout is appended here
    workdir: Path  # round<r>/checkpoint of every round
    policy: PolicyConfig
    task: str = "lift"
    rounds: int = 3  # deploy -> retrain cycles after round 0
    eval_episodes: int = 50
    deploy_episodes: int = 50
    steps: int = 3000  # training steps of every round
    # Round r > 0 starts from round r-1's weights. Measured (ACT, lift, 10 demos, 3,000 steps
    # a round): retrained from scratch, success alone went 0% -> 68% -> 60% -> 52% while the
    # data grew, each round's fixed budget spread over more of it (README).
    fine_tune: bool = True
    # The learning-rate schedule of a fine-tuning round (None: the policy's own; round 0
    # keeps it). Measured (ACT, lift, 10 demos, 3,000 steps a round, the same 100 unseen
    # seeds, 2026-11-27): a cosine decay inside each round went 51 -> 25 -> 38 /100 over
    # rounds 1-3, a constant rate 22 -> 37 -> 59 /100 (README).
    fine_tune_lr_schedule: str | None = "constant"
    batch_size: int = 32
    selection: DataSelection = ROUNDS_SELECTION
    max_duration_s: float | None = None  # per evaluation/deployment episode
    initial_checkpoint: Path | None = None  # round 0's policy, trained elsewhere
    video_dir: Path | None = None  # frame strips of each round's first evaluation rollouts
    videos: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.eval_episodes < 1 or self.deploy_episodes < 1:
            raise ValueError(
                f"rounds={self.rounds} must be >= 0, eval_episodes={self.eval_episodes} and "
                f"deploy_episodes={self.deploy_episodes} >= 1"
            )
        if self.deploy_episodes > SEEDS_PER_ROUND:
            raise ValueError(f"at most {SEEDS_PER_ROUND} deployment episodes per round")


@dataclass
class RoundResult:
    round: int
    checkpoint: str
    evaluation: EvalReport
    deployment: DeployReport | None  # None in the last round
    train_s: float = 0.0  # ~0 when round 0's checkpoint came from elsewhere
    eval_s: float = 0.0
    deploy_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["evaluation"] = self.evaluation.to_json()
        out["deployment"] = self.deployment.to_json() if self.deployment else None
        return out

    def summary(self) -> str:
        lo, hi = self.evaluation.ci95
        text = (
            f"round {self.round}: success alone {self.evaluation.success_rate:.0%} "
            f"(95% CI {lo:.0%}-{hi:.0%})"
        )
        if self.deployment is not None:
            text += (
                f", interventions in {self.deployment.intervention_rate:.0%} of episodes "
                f"({self.deployment.takeovers_per_episode:.2f} an episode), "
                f"human in control {self.deployment.human_fraction:.0%} of ticks"
            )
        return text


def train_round(config: RoundsConfig, round_: int, *, progress: bool = True) -> Path:
    """Train round ``round_``'s policy on what the store holds now; returns its run directory."""
    run = config.workdir / f"round{round_}"
    if round_ == 0 and config.initial_checkpoint is not None:
        return config.initial_checkpoint
    previous = None
    if config.fine_tune and round_ > 0:
        previous = (
            config.initial_checkpoint
            if round_ == 1 and config.initial_checkpoint is not None
            else config.workdir / f"round{round_ - 1}"
        )
    policy = config.policy
    if previous is not None and config.fine_tune_lr_schedule is not None:
        policy = replace(policy, lr_schedule=config.fine_tune_lr_schedule)
    if not (run / "checkpoint").exists():
        train(
            TrainConfig(
                store=str(config.store),
                out=run,
                steps=config.steps,
                batch_size=config.batch_size,
                num_workers=0,
                cache_images=True,
                val_every=max(1, config.steps // 2),
                checkpoint_every=config.steps,
                selection=config.selection,
                init_from=previous,
            ),
            policy,
            progress=progress,
        )
    return run


def run_rounds(
    config: RoundsConfig,
    *,
    progress: bool = True,
    on_phase: Callable[[int, str], None] | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
) -> list[RoundResult]:
    """Rounds 0..``config.rounds``; ``on_phase(round, "train"|"evaluate"|"deploy")`` is called
    as each phase starts (progress headers), ``on_round`` with each finished round."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for round_ in range(config.rounds + 1):
        started = time.perf_counter()
        if on_phase and not (round_ == 0 and config.initial_checkpoint is not None):
            on_phase(round_, "train")
        checkpoint = train_round(config, round_, progress=progress)
        trained = time.perf_counter()
        if on_phase:
            on_phase(round_, "evaluate")
        evaluation = evaluate(
            checkpoint,
            task=config.task,
            episodes=config.eval_episodes,
            seed=DEFAULT_EVAL_SEED,  # never recorded: a fixed test set across rounds
            video_dir=None if config.video_dir is None else config.video_dir / f"round{round_}",
            videos=config.videos,
            progress=progress,
            max_duration_s=config.max_duration_s,
        )
        evaluated = time.perf_counter()
        deployment = None
        if round_ < config.rounds:
            if on_phase:
                on_phase(round_, "deploy")
            deployment = deploy_sim(
                DeployConfig(
                    checkpoint=checkpoint,
                    task=config.task,
                    episodes=config.deploy_episodes,
                    store=config.store,
                    seed=DEPLOY_SEED + SEEDS_PER_ROUND * round_,
                    max_duration_s=config.max_duration_s,
                ),
                progress=progress,
            )
        result = RoundResult(
            round=round_,
            checkpoint=str(checkpoint),
            evaluation=evaluation,
            deployment=deployment,
            train_s=trained - started,
            eval_s=evaluated - trained,
            deploy_s=time.perf_counter() - evaluated,
        )
        log.info(result.summary())
        results.append(result)
        if on_round:
            on_round(result)
    return results
