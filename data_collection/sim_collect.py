"""``rl sim collect``: scripted-expert demonstrations in the simulated workcell, into a store.

The expert drives the arm through the teleop path (twist -> TwistIntegrator -> Cartesian
target), exactly as an operator's SpaceMouse would, and the recorder stores every camera,
the robot state, the commanded action and the gripper, plus the 100 Hz state stream.
Failed episodes are kept and flagged (``success`` false) so they can be studied or filtered.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from data_collection.recorder import EpisodeRecorder, camera_calibration, recording_schema
from robot_learning.errors import InputError, Interrupted
from robot_learning.hardware.robot import CartesianTarget, RobotReflexError, RobotState
from robot_learning.hardware.teleop import TeleopCommand
from robot_learning.store import Source, StoreWriter

if TYPE_CHECKING:
    from robot_learning.sim.workcell import Workcell

log = logging.getLogger(__name__)


def check_record_rate(record_hz: float, control_hz: float) -> None:
    """A step is recorded every n-th control step: the record rate must divide the control rate."""
    ratio = control_hz / record_hz
    if record_hz <= 0 or abs(ratio - round(ratio)) > 1e-9:
        raise ValueError(f"record rate {record_hz} Hz must divide the control rate {control_hz} Hz")


def sim_calibration(workcell: Workcell, seed: int) -> dict[str, Any]:
    """The calibration a simulated episode records: the cameras' true poses of this draw (a
    camera on the hand relative to the hand), traced to the seed."""
    from robot_learning.sim.scene import HAND_CAMERAS

    cameras = workcell.cameras
    return camera_calibration(
        {n: c.intrinsics for n, c in cameras.items()},
        {n: c.extrinsics for n, c in cameras.items()},
        hand_cameras={n: workcell.true_T_hand_camera(n) for n in cameras if n in HAND_CAMERAS},
        source={"kind": "simulator ground truth", "seed": seed},
    )


def sim_episode_header(
    workcell: Workcell,
    seed: int,
    *,
    task: str,
    operator: str,
    noise_m_s: float,
    task_options: Mapping[str, str],
    **notes: Any,
) -> dict[str, Any]:
    """What both embodiments begin a simulated episode with (``begin_episode``'s keywords
    but the source): its calibration of this draw and the notes that trace it to the seed,
    plus the embodiment's own ``notes``."""
    return {
        "task": task,
        "operator": operator,
        "calibration": sim_calibration(workcell, seed),
        "notes": {
            "seed": seed,
            "noise_m_s": noise_m_s,
            "sim": True,
            "task_options": dict(task_options),
            **notes,
        },
    }


@dataclass
class EpisodeTally:
    """What a run of seeded episodes committed, for the progress bar and the summary."""

    committed: int = 0
    successes: int = 0
    steps: int = 0  # recorded steps of the committed episodes
    dropped: int = 0  # episodes left out (the robot's collision reflex)

    def postfix(self) -> dict[str, Any]:
        shown = {"success": f"{self.successes}/{self.committed}", "steps": self.steps}
        return shown | ({"dropped": self.dropped} if self.dropped else {})


def run_seeded_episodes(
    workcell: Workcell,
    *,
    first_seed: int,
    episodes: int,
    desc: str,
    record: Callable[[int], tuple[bool, int] | None],
    abandon: Callable[[], None],
    progress: bool = True,
) -> EpisodeTally:
    """The collection loop both embodiments share: episode ``i`` resets the workcell to
    ``first_seed + i`` (camera poses are part of the draw) and ``record(seed)`` records and
    commits it, returning (success, recorded steps), or None for an episode it dropped. On
    any exception, Ctrl-C included, ``abandon()`` drops the open episode; committed ones
    stay."""
    tally = EpisodeTally()
    bar = tqdm(range(episodes), desc=desc, unit="episode", disable=not progress)
    try:
        for i in bar:
            seed = first_seed + i
            workcell.reset(seed)
            outcome = record(seed)
            if outcome is None:
                tally.dropped += 1
            else:
                tally.committed += 1
                tally.successes += outcome[0]
                tally.steps += outcome[1]
            bar.set_postfix(tally.postfix())
    except BaseException:
        abandon()
        raise
    return tally


@dataclass(frozen=True)
class CollectConfig:
    """What ``rl sim collect`` records; sized so 50 lift episodes take minutes on 2 cores."""

    task: str = "lift"
    episodes: int = 50
    store: Path = Path("demos.zarr")
    cameras: tuple[str, ...] = ("front", "wrist")
    image_size: tuple[int, int] = (240, 320)
    record_hz: float = 10.0
    control_hz: float = 100.0
    depth: bool = False
    noise_m_s: float = 0.02
    seed: int = 0
    operator: str = "scripted-expert"
    reflex_force_n: float | None = None  # None: the simulated arm's default collision reflex
    min_free_mb: float = 100.0  # no episode starts with less free space on the store's disk
    task_options: dict[str, str] = field(default_factory=dict)  # push: targets=any|robot|novel

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        check_record_rate(self.record_hz, self.control_hz)


@dataclass(frozen=True)
class CollectSummary:
    episodes: int  # committed
    successes: int
    steps: int
    first_episode: int
    reflexes: int = 0  # episodes dropped because the arm stopped on a reflex


def collect(config: CollectConfig, *, progress: bool = True) -> CollectSummary:
    """Run the expert ``config.episodes`` times and commit each episode to the store."""
    from robot_learning.sim.robot import SimServo
    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.workcell import Workcell

    servo = (
        None if config.reflex_force_n is None else SimServo(reflex_force_n=config.reflex_force_n)
    )
    workcell = Workcell(
        task=config.task,
        seed=config.seed,
        cameras=config.cameras,
        image_size=config.image_size,
        control_hz=config.control_hz,
        with_depth=config.depth,
        servo=servo,
        task_options=config.task_options,
    )
    record_every = round(config.control_hz / config.record_hz)
    with workcell:
        cameras = workcell.cameras
        schema = recording_schema(
            {n: c.intrinsics for n, c in cameras.items()},
            depth=config.depth,
            record_hz=config.record_hz,
            control_hz=config.control_hz,
        )
        with StoreWriter(
            config.store, schema, min_free_bytes=int(config.min_free_mb * 1e6)
        ) as writer:
            recorder = EpisodeRecorder(writer, cameras=config.cameras, depth=config.depth)
            first = writer.num_episodes

            def record(seed: int) -> tuple[bool, int] | None:
                recorder.begin(
                    source=Source.TELEOP,
                    **sim_episode_header(
                        workcell,
                        seed,
                        task=config.task,
                        operator=config.operator,
                        noise_m_s=config.noise_m_s,
                        task_options=config.task_options,
                        device="scripted expert via TwistIntegrator",
                    ),
                )

                def on_step(
                    step: int, state: RobotState, command: TeleopCommand, target: CartesianTarget
                ) -> None:
                    recorder.record_control(state, target)
                    if step % record_every == 0:
                        recorder.record_step(
                            time_s=state.timestamp_s,
                            state=state,
                            action=target,
                            twist=command.twist,
                            frames={n: c.read() for n, c in cameras.items()},
                        )

                try:
                    result = run_episode(
                        workcell, seed=seed, noise_m_s=config.noise_m_s, on_step=on_step
                    )
                except RobotReflexError as exc:
                    # Safe stop: the arm already halted; the half episode is not a demo.
                    log.warning("episode with seed %d dropped: %s", seed, exc)
                    recorder.discard()
                    workcell.robot.recover()
                    return None
                recorder.commit(
                    success=result.success,
                    notes={
                        "expert_reported_success": result.expert_reported_success,
                        "sim_duration_s": result.duration_s,
                    },
                )
                return result.success, -(-result.steps // record_every)

            tally = run_seeded_episodes(
                workcell,
                first_seed=config.seed,
                episodes=config.episodes,
                desc=f"collect {config.task}",
                record=record,
                abandon=recorder.discard,
                progress=progress,
            )
    return CollectSummary(tally.committed, tally.successes, tally.steps, first, tally.dropped)


def register(sim_subparsers: argparse._SubParsersAction) -> None:
    parser = sim_subparsers.add_parser(
        "collect",
        help="record scripted-expert demonstrations into a store",
        description="Run a task's scripted expert through the teleop path and record every "
        "episode (all cameras, robot state, commanded action, gripper, success).",
    )
    parser.add_argument("--task", default="lift", help="lift, push or stack")
    parser.add_argument(
        "--embodiment",
        choices=("robot", "hand"),
        default="robot",
        help="robot: the scripted expert teleoperates the arm (teleop "
        "episodes); hand: the human-hand stand-in does the task with the "
        "arm parked, filmed by the fixed cameras (human_video episodes; "
        "lift and push)",
    )
    parser.add_argument(
        "--task-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task option, repeatable; push: targets=any|robot|novel (the region push "
        "targets are drawn from, sim/tasks/push.py); lift: objects=any|robot|novel (where "
        "the cube starts, sim/tasks/lift.py)",
    )
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument(
        "--store",
        type=Path,
        default=Path("demos.zarr"),
        help="store path (created if missing, appended otherwise)",
    )
    parser.add_argument(
        "--cameras", nargs="+", default=None, help="default: front wrist (robot), front side (hand)"
    )
    parser.add_argument("--size", default="240x320", help="HEIGHTxWIDTH of every camera")
    parser.add_argument("--record-hz", type=float, default=10.0)
    parser.add_argument("--depth", action="store_true", help="also record aligned depth")
    parser.add_argument(
        "--noise",
        type=float,
        default=0.02,
        help="expert action noise, m/s (varies the demonstrations)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument(
        "--min-free-mb",
        type=float,
        default=100.0,
        help="do not start an episode with less free space on the store's disk",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robot_learning.sim.cli import parse_image_size, parse_task_options

    if args.embodiment == "hand":
        return run_hand(args)
    config = CollectConfig(
        task=args.task,
        episodes=args.episodes,
        store=args.store,
        cameras=tuple(args.cameras or ("front", "wrist")),
        image_size=parse_image_size(args.size),
        record_hz=args.record_hz,
        depth=args.depth,
        noise_m_s=args.noise,
        seed=args.seed,
        min_free_mb=args.min_free_mb,
        task_options=parse_task_options(args.task_option),
    )
    try:
        summary = collect(config)
    except KeyboardInterrupt:
        raise Interrupted("committed episodes are kept, the open one was discarded") from None
    print(
        f"{config.store}: recorded episodes {summary.first_episode}.."
        f"{summary.first_episode + summary.episodes - 1} of task {config.task!r}: "
        f"{summary.successes}/{summary.episodes} successful, {summary.steps} steps"
        + (f", {summary.reflexes} dropped on a reflex" if summary.reflexes else "")
    )
    return 0


def run_hand(args: argparse.Namespace) -> int:
    from data_collection.sim_human import FIXED_CAMERAS, HandCollectConfig, collect_hand
    from robot_learning.sim.cli import parse_image_size, parse_task_options

    if args.depth:
        raise InputError("--depth is not recorded for hand episodes (yet)")
    config = HandCollectConfig(
        task=args.task,
        episodes=args.episodes,
        store=args.store,
        cameras=tuple(args.cameras or FIXED_CAMERAS),
        image_size=parse_image_size(args.size),
        record_hz=args.record_hz,
        noise_m_s=args.noise,
        seed=args.seed,
        min_free_mb=args.min_free_mb,
        task_options=parse_task_options(args.task_option),
    )
    try:
        summary = collect_hand(config)
    except KeyboardInterrupt:
        raise Interrupted("committed episodes are kept, the open one was discarded") from None
    print(
        f"{config.store}: recorded human_video episodes {summary.first_episode}.."
        f"{summary.first_episode + summary.episodes - 1} of task {config.task!r}: "
        f"{summary.successes}/{summary.episodes} successful, {summary.steps} steps, "
        f"{summary.wall_s:.1f} s"
    )
    return 0
