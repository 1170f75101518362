"""The stages of the simulated week, each a thin call of the library code its ``rl`` command
runs. A stage takes the run (output folder + budget) and returns its figures as a JSON-able
dict; ``week.run_week`` times it and writes that dict to ``OUT/<stage>.json``.

Stores and folders under OUT: ``calibration/sim.yaml``; ``ros_demos.zarr`` (what the ROS 2
collection graph recorded); ``demos.zarr`` (scripted-expert demos, hand videos, their tracks,
then every deployment rollout); ``runs/<policy>`` (checkpoints); ``rounds/round<r>``
(retrained checkpoints); ``strips/`` (evaluation frame strips, PNG).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from data_collection.demo.budgets import POLICIES, ROUNDS_POLICY, DemoBudget
from robot_learning.errors import RobotLearningError

if TYPE_CHECKING:  # torch loads when training starts, not when `rl` does
    from policies.config import PolicyConfig
    from policies.train import TrainConfig

HAND_SEED = 5000  # hand videos' scenes: apart from the demos' (0...) and evaluation seeds
MAX_LOSS_POINTS = 200  # training curves are thinned to this many points in the JSON


@dataclass(frozen=True)
class DemoRun:
    out: Path
    budget: DemoBudget

    @property
    def store(self) -> Path:
        return self.out / "demos.zarr"

    @property
    def ros_store(self) -> Path:
        return self.out / "ros_demos.zarr"

    def run_dir(self, policy: str) -> Path:
        return self.out / "runs" / policy

    def relative(self, path: str | Path) -> str:
        """Paths in the JSON are relative to OUT, so the folder can move."""
        return os.path.relpath(path, self.out)


class DemoStageError(RobotLearningError):
    """A stage of the demo could not do its work (says which and what to look at)."""


# -- 1. calibration ----------------------------------------------------------------------------
def calibration(run: DemoRun) -> dict[str, Any]:
    """``rl calibrate check --sim --save``: ChArUco capture, intrinsics, hand-eye, pairs."""
    from calibration.sim import SimCalibrationConfig, run_sim_calibration

    b = run.budget
    config = SimCalibrationConfig(
        image_size=b.calibration_size,
        views=b.calibration_views,
        wrist_cameras=tuple(c for c in b.calibration_cameras if c == "wrist"),
        fixed_cameras=tuple(c for c in b.calibration_cameras if c != "wrist"),
    )
    result = run_sim_calibration(config, progress=True)
    saved = result.calibration.save(run.out / "calibration" / "sim.yaml", force=True)
    cameras = {}
    for name, report in result.reports.items():
        cameras[name] = {
            "mount": report.calibration.mount,
            "errors_vs_truth": result.errors[name],
            "intrinsics_view_rms_px": list(report.intrinsics.view_errors_px.values()),
            "handeye_view_rms_px": list(report.hand_eye.view_rms_px.values()),
            "holdout": report.holdout.summary() if report.holdout else None,
            "holdout_passed": report.calibration.holdout_passed,
        }
    return {
        "summary": {k: v for k, v in result.summary().items() if not isinstance(v, dict)},
        "cameras": cameras,
        "pairs": result.calibration.camera_pairs,
        "saved": run.relative(saved),
    }


# -- 2. the ROS 2 collection graph -------------------------------------------------------------
def ros_collection(run: DemoRun) -> dict[str, Any]:
    """``rl launch launch/collect_sim.yaml``: sim_node, teleop_node (scripted operator) and
    recorder_node, one process each over DDS on loopback, until the recorder committed
    ``ros_episodes`` episodes; then Ctrl-C (SIGINT), as a user stops it."""
    from robot_learning.store import StoreReader
    from ros_nodes.launcher.executables import find_package_share

    b = run.budget
    log_path = run.out / "ros_graph.log"
    launch_file = find_package_share("robot_learning") / "launch" / "collect_sim.yaml"
    command = [
        sys.executable, "-m", "robot_learning.cli", "launch", str(launch_file),
        f"store:={run.ros_store}", f"task:={b.task}", f"episodes:={b.ros_episodes}",
        f"height:={b.ros_size[0]}", f"width:={b.ros_size[1]}",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 200)))  # apart from other graphs here
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        launch = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        committed = 0
        try:
            with tqdm(total=b.ros_episodes, desc="ROS 2 graph", unit="episode") as bar:
                while committed < b.ros_episodes:
                    if time.perf_counter() - started > b.ros_timeout_s:
                        raise DemoStageError(
                            f"the ROS 2 collection graph committed {committed} of "
                            f"{b.ros_episodes} episodes in {b.ros_timeout_s:.0f} s; see "
                            f"{log_path}"
                        )
                    if launch.poll() is not None:
                        raise DemoStageError(
                            f"rl launch exited ({launch.returncode}) after {committed} "
                            f"episodes; see {log_path}"
                        )
                    time.sleep(0.5)
                    now = _committed_episodes(run.ros_store)
                    bar.update(now - committed)
                    committed = now
            recorded_s = time.perf_counter() - started
            launch.send_signal(signal.SIGINT)
            code = launch.wait(timeout=60)
        finally:
            if launch.poll() is None:
                os.killpg(launch.pid, signal.SIGKILL)
                launch.wait()
    summary = StoreReader(run.ros_store).summary()
    return {
        "command": "rl launch launch/collect_sim.yaml " + " ".join(command[5:]),
        "episodes": summary["episodes"],
        "successful": summary["successful"],
        "steps": summary["steps"],
        "size_bytes": summary["size_bytes"],
        "cameras": ["front", "wrist"],  # launch/collect_sim.yaml's
        "image_size": list(b.ros_size),
        "recorded_s": recorded_s,
        "launch_exit_code": code,
        "log": run.relative(log_path),
        "store": run.relative(run.ros_store),
    }


def _committed_episodes(store: Path) -> int:
    """Episodes the recorder committed so far (0 while it is still creating the store)."""
    from robot_learning.store import StoreError, StoreReader

    if not (store / "zarr.json").exists():
        return 0
    try:
        return StoreReader(store).num_episodes
    except (StoreError, OSError, ValueError):  # half-created: look again shortly
        return 0


# -- 3 + 4. demonstrations and hand videos -----------------------------------------------------
def demos(run: DemoRun) -> dict[str, Any]:
    """``rl sim collect``: the scripted expert through the teleop path, in process."""
    from data_collection.sim_collect import CollectConfig, collect

    b = run.budget
    summary = collect(
        CollectConfig(
            task=b.task,
            episodes=b.demos,
            store=run.store,
            cameras=b.robot_cameras,
            image_size=b.image_size,
            seed=0,
        )
    )
    from robot_learning.store import StoreReader

    store = _store_figures(StoreReader(run.store).summary())
    return {
        "collect": asdict(summary),
        "store": run.relative(run.store),
        "size_bytes": store["size_bytes"],
    }


def hand_videos(run: DemoRun) -> dict[str, Any]:
    """``rl sim collect --embodiment hand`` then ``rl tracks label`` (sim tracker, with its
    error model) on the robot and human episodes of the store."""
    from data_collection.motion_tracks.label import LabelConfig, label_store
    from data_collection.sim_human import HandCollectConfig, collect_hand
    from robot_learning.store import StoreReader
    from robot_learning.store.validate import validate

    b = run.budget
    summary = collect_hand(
        HandCollectConfig(
            task=b.task,
            episodes=b.hand_videos,
            store=run.store,
            cameras=b.hand_cameras,
            image_size=b.image_size,
            seed=HAND_SEED,
        )
    )
    # MT-pi's views only: the wrist camera moves with the gripper it would track
    labels = label_store(LabelConfig(store=run.store, cameras=b.policy_cameras["mtpi"]))
    store = StoreReader(run.store).summary()
    return {
        "collect": asdict(summary),
        "tracks": {
            "robot_episodes": len(labels.robot_episodes),
            "human_episodes": len(labels.human_episodes),
            "flagged": {str(k): v for k, v in labels.flagged.items()},
            "track_error_px": [round(float(e), 3) for e in labels.track_error_px],
            "lines": labels.lines(),
        },
        "store": _store_figures(store),
        "validate": [str(problem) for problem in validate(run.store)],  # [] = sound
    }


def _store_figures(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("episodes", "steps", "excluded", "successful", "sources", "tasks", "size_bytes")
    return {k: summary[k] for k in keep}


# -- 5. training -------------------------------------------------------------------------------
def training(run: DemoRun) -> dict[str, Any]:
    """``rl train --preset sim --steps N`` for ACT, Diffusion and MT-pi."""
    from policies.train import train

    b = run.budget
    out: dict[str, Any] = {}
    for name in POLICIES:
        tqdm.write(f"   {name}: {b.train_steps[name]} steps, batch {b.batch_size}")
        started = time.perf_counter()
        result = train(train_config(run, name, b.train_steps[name]), policy_preset(run, name))
        every = max(1, len(result.losses) // MAX_LOSS_POINTS)
        out[name] = {
            "steps": result.steps,
            "seconds": time.perf_counter() - started,
            "loss_every": every,
            "losses": [round(x, 5) for x in result.losses[::every]],
            "val_losses": {str(k): v for k, v in result.val_losses.items()},
            "checkpoint": run.relative(result.checkpoint),
        }
    return out


def policy_preset(run: DemoRun, policy: str) -> PolicyConfig:
    """The policy's ``sim`` preset on the cameras the budget gives it (``rl train --set
    cameras=...``: the store holds every view, each policy trains on its own), with the
    budget's changes to it."""
    from policies.registry import preset

    cameras = tuple(f"camera_{c}" for c in run.budget.policy_cameras[policy])
    changes = run.budget.policy_changes.get(policy, {})
    return replace(preset(policy, "sim"), cameras=cameras, **changes)


def train_config(run: DemoRun, policy: str, steps: int) -> TrainConfig:
    from policies.data import DataSelection
    from policies.intervention_rounds import ROUNDS_SELECTION
    from policies.train import TrainConfig

    # ACT is retrained from interventions later: its round 0 sees the data the rounds see
    selection = ROUNDS_SELECTION if policy == ROUNDS_POLICY else DataSelection()
    return TrainConfig(
        store=str(run.store),
        out=run.run_dir(policy),
        steps=steps,
        batch_size=run.budget.batch_size,
        num_workers=0,
        cache_images=True,
        val_every=max(1, steps // 2),
        checkpoint_every=steps,
        selection=selection,
    )


# -- 6. evaluation -----------------------------------------------------------------------------
def evaluation(run: DemoRun) -> dict[str, Any]:
    """``rl eval --video``: every policy alone on the same unseen seeds."""
    from policies.evaluate import DEFAULT_EVAL_SEED, evaluate

    b = run.budget
    out = {}
    for name in POLICIES:
        tqdm.write(f"   {name}: {b.eval_episodes} episodes from seed {DEFAULT_EVAL_SEED}")
        report = evaluate(
            run.run_dir(name),
            task=b.task,
            episodes=b.eval_episodes,
            seed=DEFAULT_EVAL_SEED,
            video_dir=run.out / "strips" / name,
            videos=b.frame_strips,
            max_duration_s=b.max_episode_s,
        )
        out[name] = _relative_report(run, report.to_json())
    return out


def _relative_report(run: DemoRun, report: dict[str, Any]) -> dict[str, Any]:
    report["checkpoint"] = run.relative(report["checkpoint"])
    report["videos"] = [run.relative(v) for v in report["videos"]]
    return report


# -- 7 + 8. deployment with interventions, retraining ------------------------------------------
def intervention_rounds(run: DemoRun, on_phase: Callable[[int, str], None]) -> dict[str, Any]:
    """``policies.intervention_rounds.run_rounds`` from the ACT checkpoint of stage 5: evaluate
    alone, deploy with the simulated operator (recorded into demos.zarr), retrain, ..."""
    from policies.intervention_rounds import RoundsConfig, run_rounds
    from robot_learning.store import StoreReader

    b = run.budget
    config = RoundsConfig(
        store=run.store,
        workdir=run.out / "rounds",
        policy=policy_preset(run, ROUNDS_POLICY),
        task=b.task,
        rounds=b.rounds,
        eval_episodes=b.eval_episodes,
        deploy_episodes=b.deploy_episodes,
        steps=b.round_steps,
        batch_size=b.batch_size,
        max_duration_s=b.max_episode_s,
        initial_checkpoint=run.run_dir(ROUNDS_POLICY),
        video_dir=run.out / "strips" / "rounds",
        videos=min(1, b.frame_strips),
    )
    results = run_rounds(config, on_phase=on_phase)
    rounds = []
    for r in results:
        row = r.to_json()
        row["checkpoint"] = run.relative(row["checkpoint"])
        row["evaluation"] = _relative_report(run, row["evaluation"])
        rounds.append(row)
    return {
        "policy": ROUNDS_POLICY,
        "selection": config.selection.to_json(),
        "rounds": rounds,
        "store": _store_figures(StoreReader(run.store).summary()),
    }
