"""``rl demo``: the lab's week on the simulated workcell, end to end, and its report.

  budgets.py  named budgets (``full``: within 30 min on a 2-core CPU; ``smoke``: a minute or two)
  stages.py   each stage, a thin call of the library code behind its own ``rl`` command
  week.py     the stages in order: headers, progress bars, JSON figures, wall times
  report.py   one self-contained HTML page built from those JSON files

The demo sits above the packages it drives (calibration, data_collection, policies, and the
ROS 2 graph through ``rl launch``); nothing imports it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from data_collection.demo.budgets import BUDGETS


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the whole week on the simulated workcell, then an HTML report",
        description="Calibrate, collect through the ROS 2 graph, collect demonstrations and "
        "hand videos, train ACT, Diffusion and MT-pi, evaluate, deploy with simulated "
        "interventions and retrain, then write OUT/report.html (one self-contained page). "
        "Every stage writes its figures as JSON in OUT.",
    )
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    demo.add_argument(
        "--budget",
        choices=list(BUDGETS),
        default="full",
        help="full: sized for 30 min on a 2-core CPU; smoke: every stage in a minute or two",
    )
    demo.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild OUT/report.html from OUT's JSON files, run nothing",
    )
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from data_collection.demo.budgets import budget
    from data_collection.demo.report import build_report

    if args.report_only:
        print(f"report: {build_report(args.out)}")
        return 0
    from data_collection.demo.week import run_week

    run_week(args.out, budget(args.budget))
    return 0
