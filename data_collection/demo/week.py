"""The simulated week, stage after stage: a header per stage, the stages' own progress bars,
every stage's figures and wall time as JSON in the output folder, then the HTML report.

Library log messages (warnings included) go to ``OUT/demo.log`` so the terminal shows the
headers and bars; the final lines say how many warnings were logged and where the report is.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from data_collection.demo import stages
from data_collection.demo.budgets import DemoBudget
from data_collection.demo.report import WEEK_JSON, build_report

# (JSON name, header) of every stage, in the order of the week; deployment and retraining
# alternate inside the intervention rounds, so they share one JSON file (rounds.json).
STAGE_TITLES = {
    "calibration": "simulated calibration (ChArUco, intrinsics, hand-eye) with its residuals",
    "ros_collection": "teleop demos through the ROS 2 collection graph (rl launch, scripted "
    "operator)",
    "demos": "scripted-expert demonstrations (rl sim collect, teleop path, in process)",
    "hand_videos": "hand videos (rl sim collect --embodiment hand), then motion tracks "
    "(rl tracks label)",
    "training": "training ACT, Diffusion and MT-pi (rl train --preset sim)",
    "evaluation": "evaluation of each policy alone, with latency and frame strips (rl eval)",
    "deployment": "deployment with simulated interventions, recorded into the store",
    "retraining": "retraining from the interventions, then evaluation",
}
# what the demo writes; removed before a run so nothing stale reaches the report
OUTPUTS = ("demos.zarr", "ros_demos.zarr", "runs", "rounds", "strips", "calibration")


@dataclass
class WeekLog:
    """Wall time of every stage and the budget: ``OUT/week.json``."""

    budget: dict[str, Any]
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    stages: list[dict[str, Any]] = field(default_factory=list)
    total_s: float = 0.0
    finished: bool = False

    def write(self, out: Path) -> None:
        (out / WEEK_JSON).write_text(json.dumps(self.__dict__, indent=2))


def run_week(out: Path, budget: DemoBudget) -> Path:
    """Every stage into ``out`` (earlier demo outputs there are replaced); returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for old in out.glob("*.json"):
        old.unlink()
    run = stages.DemoRun(out=out, budget=budget)
    week = WeekLog(budget=budget.to_json())
    started = time.perf_counter()
    counter = _WarningCounter()
    with _log_to(out / "demo.log", counter):
        for name in ("calibration", "ros_collection", "demos", "hand_videos", "training",
                     "evaluation"):  # fmt: skip
            _stage(week, out, name, lambda name=name: getattr(stages, name)(run))
        _rounds(week, run)
        week.total_s = time.perf_counter() - started
        week.finished = True
        week.write(out)
        report = build_report(out)
    tqdm.write(
        f"done in {week.total_s / 60:.1f} min ({budget.name} budget); "
        f"{counter.count} warning(s) logged in {out / 'demo.log'}"
    )
    tqdm.write(f"report: {report}")
    return report


def _header(name: str, detail: str = "") -> None:
    number = list(STAGE_TITLES).index(name) + 1
    tqdm.write(f"== {number}/{len(STAGE_TITLES)} {STAGE_TITLES[name]}{detail}")


def _stage(week: WeekLog, out: Path, name: str, work) -> None:
    _header(name)
    started = time.perf_counter()
    result = work()
    wall = time.perf_counter() - started
    (out / f"{name}.json").write_text(json.dumps({"wall_s": wall, **result}, indent=2))
    week.stages.append({"stage": name, "title": STAGE_TITLES[name], "wall_s": wall})
    week.write(out)
    tqdm.write(f"   {wall:.0f} s")


def _rounds(week: WeekLog, run: stages.DemoRun) -> None:
    """Stages 7 and 8 alternate round by round; each phase's time goes to its stage (the
    evaluation of round 0's policy to deployment, of a retrained one to retraining)."""

    def on_phase(round_: int, phase: str) -> None:
        stage = "deployment" if phase == "deploy" or round_ == 0 else "retraining"
        _header(stage, f": round {round_}, {phase}")

    started = time.perf_counter()
    result = stages.intervention_rounds(run, on_phase)
    wall = time.perf_counter() - started
    (run.out / "rounds.json").write_text(json.dumps({"wall_s": wall, **result}, indent=2))
    rounds = result["rounds"]
    deploy = sum(r["deploy_s"] + (r["eval_s"] if r["round"] == 0 else 0.0) for r in rounds)
    retrain = sum(r["train_s"] + r["eval_s"] for r in rounds if r["round"] > 0)
    for name, seconds in (("deployment", deploy), ("retraining", retrain)):
        week.stages.append({"stage": name, "title": STAGE_TITLES[name], "wall_s": seconds})
    week.write(run.out)
    tqdm.write(f"   {wall:.0f} s")


class _WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextmanager
def _log_to(path: Path, counter: logging.Handler) -> Iterator[None]:
    """Send the root logger's records to ``path`` (not the terminal) while the week runs."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler, counter]
    root.setLevel(min(level, logging.INFO) or logging.INFO)
    try:
        yield
    finally:
        root.handlers = saved
        root.setLevel(level)
        handler.close()
