"""Empty: the bare table, nothing to do; the scene for camera calibration."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from robot_learning.sim.experts import ScriptedExpert
from robot_learning.sim.robot import SimRobot
from robot_learning.sim.tasks.base import Task
from robot_learning.sim.tasks.registry import register_task


@register_task
class EmptyTask(Task):
    name = "empty"
    description = "a bare table with no objects (camera calibration, free motion)"

    def add_objects(self, worldbody: ET.Element, asset: ET.Element) -> None:
        pass

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def is_success(self) -> bool:
        return False

    def make_expert(
        self, *, robot: SimRobot, rng: np.random.Generator, noise_m_s: float
    ) -> ScriptedExpert:
        raise ValueError(
            "task 'empty' has nothing to solve and no scripted expert; "
            "collect demonstrations with lift, push or stack"
        )
