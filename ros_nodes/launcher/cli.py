"""``rl launch FILE [name:=value ...]`` (or ``rl launch PACKAGE FILE ...`` like ros2 launch)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ros_nodes.launcher.description import load
from ros_nodes.launcher.executables import find_package_share
from ros_nodes.launcher.processes import Launcher
from ros_nodes.launcher.substitutions import LaunchError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "launch",
        help="run a ROS 2 YAML launch file without ROS 2 (one process per node)",
        description="Run a ROS 2 YAML launch file (the same file ros2 launch runs): one "
        "process per node with its parameters, remaps and namespace. Ctrl-C stops "
        "every node (SIGINT, then SIGTERM, then SIGKILL).",
        epilog="examples: rl launch launch/collect_sim.yaml episodes:=3\n"
        "          rl launch robot_learning collect_sim.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "target",
        nargs="+",
        metavar="FILE [name:=value ...]",
        help="a launch file (or PACKAGE FILE), then launch arguments",
    )
    parser.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print each node's command line and exit without starting it (its "
        "parameter files stay in the temporary directory shown)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        help="where output: log nodes write (default $ROS_LOG_DIR or ~/.ros/log)",
    )
    parser.add_argument(
        "--sigterm-timeout",
        type=float,
        default=5.0,
        help="seconds after SIGINT before SIGTERM is sent at shutdown",
    )
    parser.add_argument(
        "--sigkill-timeout",
        type=float,
        default=5.0,
        help="seconds after SIGTERM before SIGKILL is sent at shutdown",
    )
    parser.set_defaults(func=run)


def split_target(target: list[str]) -> tuple[Path, dict[str, str]]:
    """``FILE args`` or ``PACKAGE FILE args`` -> (launch file, {name: value})."""
    head, rest = target[0], target[1:]
    if ":=" not in head and not Path(head).exists() and rest and ":=" not in rest[0]:
        share = find_package_share(head)
        candidates = [share / "launch" / rest[0], share / rest[0]]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise LaunchError(
                f"launch file {rest[0]!r} not found in package {head!r} "
                f"(looked in {', '.join(str(c.parent) for c in candidates)})"
            )
        rest = rest[1:]
    else:
        file = Path(head)
    arguments = {}
    for item in rest:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch argument {item!r} is not name:=value")
        arguments[name] = value
    return file, arguments


def run(args: argparse.Namespace) -> int:
    file, arguments = split_target(args.target)
    plan = load(file, arguments)
    if not plan.nodes:
        raise LaunchError(f"{file}: no nodes to start with these arguments")
    launcher = Launcher(
        plan.nodes,
        log_dir=args.log_dir,
        sigterm_timeout_s=args.sigterm_timeout,
        sigkill_timeout_s=args.sigkill_timeout,
    )
    if args.print_only:
        for label, command in launcher.commands():
            print(f"{label}: {shlex.join(command)}")
        return 0
    return launcher.run()
