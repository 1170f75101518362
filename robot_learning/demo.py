"""``rl demo``: the main job on the simulated workcell (filled in as the stack grows)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="run the whole pipeline on the simulated workcell")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
