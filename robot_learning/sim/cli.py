"""``rl sim ...``: commands on the simulated workcell.

``register`` adds the ``sim`` group to ``rl``; ``register_view`` adds ``rl sim view``. Both are
entry points like every other command (``sim``, ``sim.view``, ``sim.collect`` in
pyproject.toml; see robot_learning/cli.py). MuJoCo is imported only when a command runs, so
``rl --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from robot_learning.errors import InputError

if TYPE_CHECKING:
    from robot_learning.sim.rollout import EpisodeResult

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


def parse_task_options(items: list[str]) -> dict[str, str]:
    """Repeated ``--task-option KEY=VALUE`` (rl sim collect, rl eval) -> the task's options."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--task-option {item!r}: expected KEY=VALUE, e.g. targets=novel")
        options[key] = value
    return options


def register_view(sim_subparsers: argparse._SubParsersAction) -> None:
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


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    parser = subparsers.add_parser("sim", help="simulated Franka workcell")
    return parser.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")


def run_view(args: argparse.Namespace) -> int:
    written, replay = render_views(
        task=args.task,
        seed=args.seed,
        out=args.out,
        frames=args.frames,
        cameras=args.cameras,
        size=args.size,
    )
    for path in written:
        print(path)
    print(
        f"{args.task} seed {args.seed}: success={replay.success}, "
        f"{replay.duration_s:.2f} s simulated, {len(written)} frames in {args.out}"
    )
    return 0


def render_views(
    *,
    task: str,
    seed: int,
    out: Path,
    frames: int = 4,
    cameras: list[str] | tuple[str, ...] = ALL_CAMERAS,
    size: tuple[int, int] = (240, 320),
) -> tuple[list[Path], EpisodeResult]:
    """Run one seeded expert episode; save ``frames`` evenly spaced PNGs per camera in ``out``.

    Returns the files written and the replay's ``EpisodeResult``.
    """
    import imagecodecs
    import numpy as np

    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.workcell import Workcell

    if frames < 1:
        raise InputError(f"--frames must be at least 1, got {frames}")
    workcell = Workcell(task=task, seed=seed, cameras=list(cameras), image_size=size)
    with workcell:
        # A dry run finds the episode length; the seeded replay renders evenly spaced frames.
        result = run_episode(workcell, seed=seed)
        last = max(result.steps - 1, 0)
        wanted = sorted({round(i * last / max(frames - 1, 1)) for i in range(frames)})
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []

        def save_frames(step: int, *_: object) -> None:
            if step not in wanted:
                return
            for camera, image in workcell.render(list(cameras)).items():
                path = out / f"{task}_seed{seed}_{camera}_{step:05d}.png"
                path.write_bytes(imagecodecs.png_encode(np.ascontiguousarray(image)))
                written.append(path)

        replay = run_episode(workcell, seed=seed, on_step=save_frames)
    return written, replay
