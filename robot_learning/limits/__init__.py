"""One limits file per robot: where its hand may go and how fast, read by everything that
commands it (the runtime's safety filter, the teleop integrator, the franky and sim arms).

The files live beside this module (``fr3.yaml``, ``fr3_sim.yaml``); a lab copies one, edits
it for its cell (table height, fixtures) and passes the path wherever a robot name is taken.
Units are in the field names; frames are the robot base frame (``fr3_link0``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LIMITS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class RobotLimits:
    """Limits every Cartesian command is held to, whoever produced it."""

    workspace_min_m: tuple[float, float, float] = (0.20, -0.50, 0.02)
    workspace_max_m: tuple[float, float, float] = (0.80, 0.50, 0.80)
    max_linear_speed_m_s: float = 0.25  # of the commanded target
    max_angular_speed_rad_s: float = 1.0
    max_linear_accel_m_s2: float = 9.0  # libfranka's Cartesian limits
    max_angular_accel_rad_s2: float = 17.0
    # How far a target may lead the measured pose: with stiff Cartesian gains a target far
    # ahead of a blocked hand turns straight into contact force.
    max_lead_m: float = 0.10
    max_lead_rad: float = 0.35
    gripper_min_switch_interval_s: float = 0.3  # open/close no faster than this
    command_timeout_s: float = 0.2  # watchdog: hold when the newest command is older
    observation_timeout_s: float = 0.2  # watchdog: hold when the newest state is older
    joint_margin_rad: float = 0.02  # joint targets stay this far inside the datasheet limits
    source: str = "built-in defaults"  # the file these came from, for messages

    def __post_init__(self) -> None:
        problems = []
        lo, hi = self.workspace_min_m, self.workspace_max_m
        if len(lo) != 3 or len(hi) != 3 or any(a >= b for a, b in zip(lo, hi, strict=True)):
            problems.append(f"workspace_min_m {lo} must be below workspace_max_m {hi} on x, y, z")
        for name in (
            "max_linear_speed_m_s",
            "max_angular_speed_rad_s",
            "max_linear_accel_m_s2",
            "max_angular_accel_rad_s2",
            "max_lead_m",
            "max_lead_rad",
            "command_timeout_s",
            "observation_timeout_s",
        ):
            if not getattr(self, name) > 0:
                problems.append(f"{name}={getattr(self, name)} must be positive")
        if self.gripper_min_switch_interval_s < 0 or self.joint_margin_rad < 0:
            problems.append("gripper_min_switch_interval_s and joint_margin_rad must be >= 0")
        if problems:
            raise ValueError(f"robot limits from {self.source}: " + "; ".join(problems))

    def to_yaml(self) -> str:
        fields = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()
            if k != "source"
        }
        return yaml.safe_dump(fields, sort_keys=False)


def load_limits(robot_or_path: str | Path) -> RobotLimits:
    """Limits of a shipped robot (``fr3``, ``fr3_sim``) or from a YAML file a lab edited.

    Unknown keys are errors (a typo must not silently leave a limit at its default).
    """
    path = Path(robot_or_path)
    if not path.suffix:
        path = LIMITS_DIR / f"{robot_or_path}.yaml"
        if not path.exists():
            shipped = sorted(p.stem for p in LIMITS_DIR.glob("*.yaml"))
            raise FileNotFoundError(
                f"no limits for robot {robot_or_path!r}; shipped: {shipped}"
                " (or pass a path to a YAML limits file)"
            )
    if not path.exists():
        raise FileNotFoundError(f"limits file {path} does not exist")
    raw: Any = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"limits file {path}: expected a mapping of limit names to values")
    known = {f.name for f in dataclasses.fields(RobotLimits)} - {"source"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"limits file {path}: unknown keys {unknown}; known: {sorted(known)}")
    values = {k: tuple(float(x) for x in v) if isinstance(v, list) else v for k, v in raw.items()}
    return RobotLimits(**values, source=str(path))
