"""``rl deploy --sim``: a checkpoint in control of the simulated cell, a (simulated) operator
ready to take over, and every rollout recorded as a ``policy`` or ``intervention`` episode.

The same runtime pieces drive the real arm: the control loop with the safety filter, the
policy on its own inference thread when paced by the wall clock, and the intervention
arbiter. Each recorded step says who was in control and carries both the policy's and the
operator's action, so ``rl train`` can learn from the human-controlled stretches.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from data_collection.recorder import EpisodeRecorder, camera_calibration, recording_schema
from policies import checkpoint as ckpt
from policies.evaluate import policy_workcell, training_seeds, wilson_interval
from policies.policy import load_policy
from robot_learning.hardware.robot import RobotReflexError
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice
from robot_learning.keys import CONTROL_SOURCE, HUMAN_ACTION, POLICY_ACTION
from robot_learning.runtime.arbiter import InterventionArbiter
from robot_learning.runtime.controllers import (
    AsyncPolicyController,
    ControlSource,
    PolicyController,
)
from robot_learning.runtime.loop import StepRecord, WallClockPacer
from robot_learning.store import Source, StoreWriter

if TYPE_CHECKING:
    from robot_learning.sim.robot import SimServo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployConfig:
    checkpoint: Path
    task: str
    episodes: int = 10
    seed: int = 200_000  # far from collection (0...) and evaluation (100000...) seeds
    store: Path | None = None  # where rollouts are recorded; None: not recorded
    realtime: bool = False  # wall-clock pacing, inference on its own thread
    operator: bool = True  # a simulated operator takes over when the policy drifts
    execution_changes: dict[str, Any] = field(default_factory=dict)
    inference_changes: dict[str, Any] = field(default_factory=dict)  # e.g. num_samples
    record_hz: float | None = None  # default: the policy's rate
    max_duration_s: float | None = None
    device: str = "cpu"
    sim_servo: SimServo | None = None  # the simulated arm's tracking and reflex settings


@dataclass(frozen=True)
class DeployReport:
    checkpoint: str
    task: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    interventions: int  # takeovers, all episodes
    episodes_with_intervention: int
    human_fraction: float  # of control ticks
    recorded: list[int]  # store episode indices
    safety_counts: dict[str, int]
    faults: list[str]
    timing_ms: dict[str, float]
    latency_ms_p50: float
    latency_ms_p99: float
    # realtime: age of the observation a chunk was predicted from when it arrived (the camera
    # stamp -> first command it drives); lockstep: nan (the simulator waits)
    chunk_age_ms_p50: float = float("nan")
    chunk_age_ms_p99: float = float("nan")
    takeover_reasons: dict[str, int] = dataclasses.field(default_factory=dict)  # sim operator
    inference: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. num_samples
    execution: dict[str, Any] = dataclasses.field(default_factory=dict)  # e.g. speed

    @property
    def intervention_rate(self) -> float:
        return self.episodes_with_intervention / max(1, self.episodes)

    @property
    def takeovers_per_episode(self) -> float:
        return self.interventions / max(1, self.episodes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "intervention_rate": self.intervention_rate,
            "takeovers_per_episode": self.takeovers_per_episode,
        }


class IdleOperator(TeleopDevice):
    """Nobody at the SpaceMouse: never takes over (a deployment without an operator)."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def read(self) -> TeleopCommand:
        return TeleopCommand(self.clock(), np.zeros(6), False)


def deploy_sim(config: DeployConfig, *, progress: bool = True) -> DeployReport:
    from robot_learning.sim.arm import WorkcellArm, monotonic_station_clock
    from robot_learning.sim.operator import SimulatedOperator
    from robot_learning.sim.rollout import run_episode

    path = ckpt.resolve(config.checkpoint)
    policy = load_policy(path, device=config.device)
    policy.change_inference(**config.inference_changes)
    seeds = list(range(config.seed, config.seed + config.episodes))
    overlap = sorted(training_seeds(path) & set(seeds))
    if overlap:
        raise ValueError(
            f"deployment seeds {overlap[:10]} were used by training episodes of "
            f"{path}; choose --seed outside them"
        )
    execution = dataclasses.replace(policy.execution(), **config.execution_changes)
    workcell, cameras = policy_workcell(
        policy, path, task=config.task, seed=config.seed, servo=config.sim_servo
    )
    rate_hz = config.record_hz or policy.features.rate_hz
    record_every = max(1, round(1.0 / (rate_hz * workcell.control_period_s)))
    writer = None
    if config.store is not None:
        schema = recording_schema(
            {n: c.intrinsics for n, c in workcell.cameras.items()},
            record_hz=rate_hz,
            control_hz=1 / workcell.control_period_s,
            intervention=True,
        )
        writer = StoreWriter(config.store, schema)
    recorded: list[int] = []
    successes = takeovers = with_takeover = human_ticks = ticks = 0
    reasons: dict[str, int] = {}
    safety: dict[str, int] = {}
    faults: list[str] = []
    timings: list[dict[str, float]] = []
    latencies: list[float] = []
    ages: list[float] = []
    try:
        with workcell:
            recorder = EpisodeRecorder(writer, cameras=tuple(cameras)) if writer else None
            bar = tqdm(seeds, desc=f"deploy {config.task}", unit="episode", disable=not progress)
            for i, seed in enumerate(bar):
                arm = WorkcellArm(
                    workcell, station_clock=monotonic_station_clock if config.realtime else None
                )
                arm.reset(seed)
                observe = arm.observer(cameras)
                if config.realtime:
                    policy_controller: AsyncPolicyController | PolicyController = (
                        AsyncPolicyController(policy, observe, execution)
                    )
                else:
                    policy_controller = PolicyController(policy, observe, execution)
                device: TeleopDevice = (
                    SimulatedOperator(workcell.make_expert(noise_m_s=0.0), workcell.robot)
                    if config.operator
                    else IdleOperator(arm.now)
                )
                arbiter = InterventionArbiter(
                    policy_controller, device, limits=workcell.robot.limits
                )
                if recorder is not None:
                    recorder.begin(
                        source=Source.POLICY,
                        task=config.task,
                        operator=("simulated operator" if config.operator else "none"),
                        calibration=camera_calibration(
                            {n: c.intrinsics for n, c in workcell.cameras.items()},
                            {n: c.extrinsics for n, c in workcell.cameras.items()},
                        ),
                        notes={
                            "seed": seed,
                            "sim": True,
                            "checkpoint": str(path),
                            "checkpoint_sha256": ckpt.fingerprint(path),
                            "realtime": config.realtime,
                            "execution": dataclasses.asdict(execution),
                        },
                    )
                sources: list[int] = []

                def on_step(step: StepRecord, recorder=recorder, sources=sources, arm=arm) -> None:
                    command = step.command
                    source = command.source if command.source is not None else ControlSource.POLICY
                    sources.append(int(source))
                    if recorder is None:
                        return
                    recorder.record_control(step.state, step.sent.target)
                    if step.step % record_every == 0:
                        frames = {n: arm.frame(n) for n in cameras}
                        twist = command.teleop.twist if command.teleop else np.zeros(6)
                        recorder.record_step(
                            time_s=step.state.timestamp_s,
                            state=step.state,
                            action=step.sent.target,
                            twist=twist,
                            frames=frames,
                            control={
                                CONTROL_SOURCE: np.uint8(source),
                                POLICY_ACTION: command.policy_target.as_vector(),
                                HUMAN_ACTION: command.human_target.as_vector(),
                            },
                        )

                try:
                    result = run_episode(
                        workcell,
                        seed=seed,
                        controller=arbiter,
                        arm=arm,
                        pacer=WallClockPacer(workcell.control_period_s)
                        if config.realtime
                        else None,
                        stop_on_success=not config.operator,
                        max_duration_s=config.max_duration_s,
                        on_step_record=on_step,
                    )
                    success = bool(result.success)
                    loop = result.loop
                except RobotReflexError as exc:  # the arm stopped itself: recover, go on
                    log.warning("seed %d: %s", seed, exc)
                    workcell.robot.recover()
                    success, loop, fault = False, None, str(exc)
                    faults.append(f"seed {seed}: {exc}")
                else:
                    fault = "; ".join(loop.faults) if loop.stopped_by == "fault" else None
                finally:
                    if isinstance(policy_controller, AsyncPolicyController):
                        policy_controller.close(timeout_s=1.0)
                n_takeovers = len(arbiter.takeovers)
                why = list(getattr(device, "reasons", []))  # the simulated operator's
                for reason in why:
                    reasons[reason] = reasons.get(reason, 0) + 1
                takeovers += n_takeovers
                with_takeover += n_takeovers > 0
                human_ticks += sum(s == ControlSource.HUMAN for s in sources)
                ticks += len(sources)
                latencies.extend(policy_controller.latencies_s)
                ages.extend(getattr(policy_controller, "ages_s", []))
                if loop is not None:
                    for name, count in loop.safety_counts.items():
                        safety[name] = safety.get(name, 0) + count
                    faults.extend(f"seed {seed}: {f}" for f in loop.faults)
                    timings.append(loop.timings.summary(workcell.control_period_s))
                successes += success
                if recorder is not None:
                    if not sources or not recorder.writer.in_episode:
                        recorder.discard()
                    else:  # interrupted episodes too: what led up to a fault is data
                        notes: dict[str, Any] = {
                            "takeovers": [dataclasses.asdict(t) for t in arbiter.takeovers],
                            "operator_reasons": why,
                            "stopped_by": "fault" if fault else loop.stopped_by,
                            "safety": loop.safety_counts if loop else {},
                        }
                        if fault:
                            notes |= {"interrupted": True, "fault": fault}
                        elif loop is not None and loop.faults:  # a hung policy: held, went on
                            notes["stalls"] = list(loop.faults)
                        recorded.append(
                            recorder.commit(
                                success=success and not fault,
                                source=(Source.INTERVENTION if n_takeovers else Source.POLICY),
                                notes=notes,
                            )
                        )
                bar.set_postfix(success=f"{successes}/{i + 1}", takeovers=takeovers)
    finally:
        if writer is not None:
            writer.close()
    ms = np.asarray(latencies) * 1e3 if latencies else np.array([np.nan])
    timing = {
        k: float(np.nanmean([t.get(k, np.nan) for t in timings]))
        for k in (timings[0] if timings else {})
    }
    return DeployReport(
        checkpoint=str(path),
        task=config.task,
        episodes=config.episodes,
        successes=successes,
        success_rate=successes / config.episodes,
        ci95=wilson_interval(successes, config.episodes),
        interventions=takeovers,
        episodes_with_intervention=with_takeover,
        human_fraction=human_ticks / max(1, ticks),
        takeover_reasons=reasons,
        recorded=recorded,
        safety_counts=safety,
        faults=faults,
        timing_ms=timing,
        latency_ms_p50=float(np.percentile(ms, 50)),
        latency_ms_p99=float(np.percentile(ms, 99)),
        chunk_age_ms_p50=float(np.percentile(ages, 50) * 1e3) if ages else float("nan"),
        chunk_age_ms_p99=float(np.percentile(ages, 99) * 1e3) if ages else float("nan"),
        inference=policy.inference_settings(),
        execution=dataclasses.asdict(execution),
    )
