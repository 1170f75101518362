"""``rl eval``: a checkpoint's success rate in the lockstep simulator, on unseen seeds.

The policy drives the workcell through ``PolicyController`` and the ``ChunkExecutor``,
the path deployment takes; the simulator pauses while the policy thinks, so success does
not depend on this CPU's speed, and inference latency is measured beside it. Seeds that
any training episode used (recorded in the checkpoint's data.json) are refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from policies import checkpoint as ckpt
from policies.features import PolicyFeatures
from policies.policy import ChunkPolicy, Policy, load_policy
from robot_learning.hardware.robot import RobotReflexError
from robot_learning.keys import camera_name
from robot_learning.runtime import Observation
from robot_learning.runtime.controllers import PolicyController

if TYPE_CHECKING:
    from collections.abc import Mapping

    from robot_learning.sim.robot import SimServo
    from robot_learning.sim.workcell import Workcell

log = logging.getLogger(__name__)
DEFAULT_EVAL_SEED = 100_000  # training collections start at 0; far from any of them


@dataclass(frozen=True)
class EvalReport:
    checkpoint: str
    task: str
    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    seeds: list[int]
    episode_success: list[bool]
    episode_length_s: list[float]
    latency_ms_p50: float
    latency_ms_p99: float
    execution: dict[str, Any]
    reflexes: int = 0  # rollouts the arm stopped on a collision reflex (counted as failures)
    videos: list[str] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)  # every policy call (histograms)
    task_options: dict[str, str] = field(default_factory=dict)  # e.g. push: targets=novel
    inference: dict[str, Any] = field(default_factory=dict)  # e.g. Diffusion: num_samples

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% confidence interval of a success rate (Wilson score: sane at 0/n and n/n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def training_seeds(path: Path) -> set[int]:
    return set(ckpt.read_json(path, "data.json").get("seeds", []))


def policy_workcell(
    policy: ChunkPolicy | Policy,
    path: Path,
    *,
    task: str,
    seed: int,
    control_hz: float = 100.0,
    servo: SimServo | None = None,
    task_options: Mapping[str, str] | None = None,
) -> tuple[Workcell, list[str]]:
    """A workcell rendering exactly the cameras, at the size, the policy was trained on."""
    from robot_learning.sim.workcell import Workcell

    features = policy.features
    sizes = {tuple(s[:2]) for s in features.image_shapes}
    if len(sizes) != 1:
        raise ValueError(
            f"{path}: cameras of different sizes {sizes}; the workcell renders "
            "every camera at one size"
        )
    cameras = [camera_name(k) for k in features.cameras]
    workcell = Workcell(
        task=task,
        seed=seed,
        cameras=cameras,
        image_size=sizes.pop(),
        control_hz=control_hz,
        servo=servo,
        task_options=task_options,
    )
    station = PolicyFeatures(
        cameras=features.cameras,
        image_shapes=tuple((*workcell.image_size, 3) for _ in cameras),
        rate_hz=features.rate_hz,
    )
    try:
        features.check(station, where=f"the simulated workcell ({task})")
    except BaseException:
        workcell.close()
        raise
    policy.use_cameras(lambda: workcell.camera_views(cameras))  # each episode's cameras
    return workcell, cameras


def evaluate(
    checkpoint: str | Path,
    *,
    task: str,
    episodes: int,
    seed: int = DEFAULT_EVAL_SEED,
    execution_changes: dict[str, Any] | None = None,
    inference_changes: dict[str, Any] | None = None,
    video_dir: Path | None = None,
    videos: int = 3,
    progress: bool = True,
    device: str = "cpu",
    max_duration_s: float | None = None,
    task_options: Mapping[str, str] | None = None,
) -> EvalReport:
    from robot_learning.sim.rollout import run_episode, workcell_observer

    path = ckpt.resolve(checkpoint)
    policy = load_policy(path, device=device)
    policy.change_inference(**(inference_changes or {}))
    seeds = list(range(seed, seed + episodes))
    overlap = sorted(training_seeds(path) & set(seeds))
    if overlap:
        raise ValueError(
            f"evaluation seeds {overlap[:10]} were used by training episodes of "
            f"{path}; choose --seed outside them"
        )
    features = policy.features
    # the policy's own execution defaults, with what the caller changes (rl eval's flags)
    execution = dataclasses.replace(policy.execution(), **(execution_changes or {}))
    workcell, cameras = policy_workcell(
        policy, path, task=task, seed=seed, task_options=task_options
    )
    with workcell:
        successes, reflexes, lengths, flags, latencies, written = 0, 0, [], [], [], []
        bar = tqdm(seeds, desc=f"eval {task}", unit="episode", disable=not progress)
        for i, episode_seed in enumerate(bar):
            frames: list[np.ndarray] = []

            def keep(
                observation: Observation,
                record: bool = i < videos,
                frames: list[np.ndarray] = frames,
            ) -> None:
                if record and video_dir is not None:
                    frames.append(
                        np.concatenate([observation[k] for k in features.cameras], axis=1)
                    )

            controller = PolicyController(
                policy, workcell_observer(workcell, cameras), execution, on_observation=keep
            )
            try:
                result = run_episode(
                    workcell,
                    seed=episode_seed,
                    controller=controller,
                    stop_on_success=True,
                    max_duration_s=max_duration_s,
                )
                success, duration = bool(result.success), result.duration_s
            except RobotReflexError as exc:  # the arm stopped itself: a failed rollout
                log.info("seed %d: %s", episode_seed, exc)
                workcell.robot.recover()
                success, duration = False, workcell.time_s
                reflexes += 1
            successes += success
            flags.append(success)
            lengths.append(duration)
            latencies.extend(controller.latencies_s)
            if frames:
                written.append(str(_write_strip(video_dir, task, episode_seed, success, frames)))
            bar.set_postfix(success=f"{successes}/{i + 1}")
    ms = np.asarray(latencies) * 1e3
    return EvalReport(
        checkpoint=str(path),
        task=task,
        episodes=episodes,
        successes=successes,
        success_rate=successes / episodes,
        ci95=wilson_interval(successes, episodes),
        seeds=seeds,
        episode_success=flags,
        episode_length_s=lengths,
        latency_ms_p50=float(np.percentile(ms, 50)),
        latency_ms_p99=float(np.percentile(ms, 99)),
        execution=dataclasses.asdict(execution),
        reflexes=reflexes,
        videos=written,
        latency_ms=[round(float(x), 3) for x in ms],
        task_options=dict(task_options or {}),
        inference=policy.inference_settings(),
    )


def _write_strip(
    directory: Path, task: str, seed: int, success: bool, frames: list[np.ndarray], columns: int = 8
) -> Path:
    """A PNG of up to ``columns`` evenly spaced observations (all cameras side by side)."""
    import imagecodecs

    directory.mkdir(parents=True, exist_ok=True)
    picks = np.linspace(0, len(frames) - 1, num=min(columns, len(frames))).round().astype(int)
    strip = np.concatenate([frames[i] for i in picks], axis=0)
    path = directory / f"{task}_seed{seed}_{'success' if success else 'fail'}.png"
    path.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(strip)))
    return path


def format_report(report: EvalReport) -> str:
    lo, hi = report.ci95
    options = "".join(f" {k}={v}" for k, v in report.task_options.items())
    return (
        f"{report.task}{options}: {report.successes}/{report.episodes} successful "
        f"({100 * report.success_rate:.0f}%, 95% CI {100 * lo:.0f}-{100 * hi:.0f}%), "
        f"episode length {np.mean(report.episode_length_s):.1f} s, "
        f"policy call p50 {report.latency_ms_p50:.1f} ms, p99 {report.latency_ms_p99:.1f} ms"
        + (f", {report.reflexes} stopped by the collision reflex" if report.reflexes else "")
        + "".join(f", {k}={v}" for k, v in report.inference.items())
        + f" (seeds {report.seeds[0]}..{report.seeds[-1]})"
    )


def dumps(report: EvalReport) -> str:
    return json.dumps(report.to_json())
