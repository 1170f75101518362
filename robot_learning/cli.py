"""The ``rl`` command, assembled from command modules that register themselves.

One registration mechanism: the ``robot_learning.commands`` entry points in pyproject.toml.
Each names a dotted command path (``store``, ``sim``, ``sim.collect``) and a function
``register(subparsers) -> subparsers | None`` that adds its parser, sets ``func``
(args -> exit status) and returns the subparsers of its own children, if it has any.
Entry points keep dependencies pointing one way: ``data_collection`` adds ``rl sim collect``
without ``robot_learning`` importing it. Modules load when ``rl`` starts; heavy libraries
(MuJoCo, torch) load only when a command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "robot_learning.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl",
        description="Robot-learning stack: demonstration store, simulated workcell, collection.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    children: dict[str, argparse._SubParsersAction] = {
        "": parser.add_subparsers(dest="command", metavar="COMMAND")
    }
    commands = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    if not commands:
        raise SystemExit("rl: no commands registered; install the package (pip install -e .)")
    for command in commands:
        parent = command.name.rpartition(".")[0]
        if parent not in children:
            raise SystemExit(f"rl: command {command.name!r} has no parent command {parent!r}")
        sub = command.load()(children[parent])
        if sub is not None:
            children[command.name] = sub
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("OpenGL").setLevel(logging.WARNING)  # chatty at INFO about accelerate
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
