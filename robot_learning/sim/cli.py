"""``rl sim ...``: commands on the simulated workcell.

``register`` adds the ``sim`` group to ``rl``; its subcommands are the functions listed in
``SIM_COMMANDS``, each taking the sim subparsers and adding one parser with ``func`` set
(args -> exit status). A new subcommand (``collect``) is one more function in that list.
MuJoCo is imported only when a command runs, so ``rl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_VIEW_DIR = Path("out/sim_view")
ALL_CAMERAS = ("front", "wrist", "side")


def parse_image_size(text: str) -> tuple[int, int]:
    """'240x320' -> (240, 320): height x width, like the arrays."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image size {text!r} must be HEIGHTxWIDTH, e.g. 240x320"
        ) from None
    if height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f"image size {text!r} must be positive")
    return height, width


def add_view_command(sim_subparsers: argparse._SubParsersAction) -> None:
    parser = sim_subparsers.add_parser(
        "view",
        help="run a task's scripted expert and save a few frames per camera as PNG",
        description="Run one seeded expert episode and save evenly spaced frames per camera.",
    )
    parser.add_argument("--task", default="lift", help="task name (lift, push, stack)")
    parser.add_argument("--seed", type=int, default=0, help="episode seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_VIEW_DIR, help="output folder")
    parser.add_argument("--frames", type=int, default=4, help="frames per camera (>= 1)")
    parser.add_argument("--cameras", nargs="+", default=list(ALL_CAMERAS), help="cameras to render")
    parser.add_argument(
        "--size", type=parse_image_size, default=(240, 320), help="HEIGHTxWIDTH (240x320)"
    )
    parser.set_defaults(func=run_view)


# Subcommands of `rl sim` defined here; other packages add theirs (`collect`) through the
# `robot_learning.commands` entry points (see robot_learning/cli.py).
SIM_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_view_command]


def add_sim_commands(sim_subparsers: argparse._SubParsersAction) -> None:
    for add_command in SIM_COMMANDS:
        add_command(sim_subparsers)


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    parser = subparsers.add_parser("sim", help="simulated Franka workcell")
    sim_subparsers = parser.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    add_sim_commands(sim_subparsers)

    def print_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=print_help)
    return sim_subparsers


def run_view(args: argparse.Namespace) -> int:
    import imagecodecs
    import numpy as np

    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.tasks import UnknownTaskError
    from robot_learning.sim.workcell import Workcell

    if args.frames < 1:
        logger.error("--frames must be at least 1, got %d", args.frames)
        return 2
    try:
        workcell = Workcell(
            task=args.task, seed=args.seed, cameras=args.cameras, image_size=args.size
        )
    except (UnknownTaskError, ValueError) as exc:
        logger.error("%s", exc)
        return 2
    with workcell:
        # A dry run finds the episode length; the seeded replay renders evenly spaced frames.
        result = run_episode(workcell, seed=args.seed)
        last = max(result.steps - 1, 0)
        wanted = sorted({round(i * last / max(args.frames - 1, 1)) for i in range(args.frames)})
        args.out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []

        def save_frames(step: int, *_: object) -> None:
            if step not in wanted:
                return
            for camera, image in workcell.render(args.cameras).items():
                path = args.out / f"{args.task}_seed{args.seed}_{camera}_{step:05d}.png"
                path.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(image)))
                written.append(path)

        replay = run_episode(workcell, seed=args.seed, on_step=save_frames)
    for path in written:
        print(path)
    print(
        f"{args.task} seed {args.seed}: success={replay.success}, "
        f"{replay.duration_s:.2f} s simulated, {len(written)} frames in {args.out}"
    )
    return 0
