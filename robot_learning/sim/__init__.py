"""The simulated Franka workcell: a lockstep MuJoCo FR3, tasks, scripted experts, cameras.

Main entry points (imported lazily, so ``rl --help`` does not load MuJoCo):

- ``Workcell`` (``workcell.py``): ``reset(seed)``, ``step(target)``, ``render(cameras)``,
  ``robot`` (a ``Robot``), ``cameras`` (``Camera`` implementations), ``make_expert()``;
- ``make_task`` / ``register_task`` / ``TASKS`` (``tasks/``): "lift", "push", "stack", and
  "empty" (a bare table, for calibration with ``Workcell(boards=("table",))`` etc.);
- ``run_episode`` (``rollout.py``): an expert or teleop device (through ``TwistIntegrator``,
  the path a SpaceMouse takes) or a policy (through the ``ChunkExecutor``, the path
  deployment takes) driving the workcell, lockstep;
- ``FrankySimServer`` (``franky_server.py``): the franky-sim simulator (libfranka protocol)
  as a loopback subprocess, for tests and benchmarks of the real-arm path (franky).

Offscreen rendering defaults to EGL (``MUJOCO_GL=egl``), which works without a display and,
on a machine without a GPU, renders on the CPU through Mesa.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

_EXPORTS = {
    "Workcell": "robot_learning.sim.workcell",
    "SimRobot": "robot_learning.sim.robot",
    "SimReflexError": "robot_learning.sim.robot",
    "SimCamera": "robot_learning.sim.camera",
    "ScriptedExpert": "robot_learning.sim.experts",
    "TASKS": "robot_learning.sim.tasks",
    "Task": "robot_learning.sim.tasks",
    "UnknownTaskError": "robot_learning.sim.tasks",
    "make_task": "robot_learning.sim.tasks",
    "register_task": "robot_learning.sim.tasks",
    "task_names": "robot_learning.sim.tasks",
    "run_episode": "robot_learning.sim.rollout",
    "EpisodeResult": "robot_learning.sim.rollout",
    "FrankySimServer": "robot_learning.sim.franky_server",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'robot_learning.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
