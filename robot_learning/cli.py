"""The ``rl`` command. Each subcommand group lives beside the code it drives and registers here.

One registration mechanism: a module listed in ``COMMAND_GROUPS`` exposes
``register(subparsers)``, which adds its parser and sets ``func`` (args -> exit status).
Modules are imported only when listed, so ``rl --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_GROUPS: tuple[str, ...] = (
    "robot_learning.store.cli",
    "robot_learning.sim.cli",
    "robot_learning.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl", description="Robot-learning stack: store, simulated workcell, collection."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_GROUPS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
