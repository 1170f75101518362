"""Stack: put the small red cube on top of the larger blue cube and let go."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from robot_learning.sim.experts import Plan, ScriptedExpert
from robot_learning.sim.robot import SimRobot
from robot_learning.sim.tasks.base import (
    FreeBody,
    Task,
    add_cube,
    finger_geoms,
    in_contact,
    sample_xy,
)
from robot_learning.sim.tasks.lift import PickExpert
from robot_learning.sim.tasks.registry import register_task

TOP = "cube_top"
BASE = "cube_base"
TOP_HALF_M = 0.02
BASE_HALF_M = 0.025
STACKED_Z_M = 2 * BASE_HALF_M + TOP_HALF_M  # top cube's centre when stacked


class StackExpert(PickExpert):
    """Pick the top cube, carry it over the base cube, lower it on, release, back off."""

    def __init__(self, *, task: StackTask, **kwargs) -> None:
        super().__init__(cube=task.top, cube_half_size_m=TOP_HALF_M, **kwargs)
        self.task = task
        self._release_xy = np.zeros(2)

    def plan(self, now_s: float) -> Plan:
        if self.phase in ("", "approach", "descend", "close", "lift"):
            plan = self.pick_plan(now_s)
            if plan is not None:
                return plan
            self.enter("carry", now_s)
        base, top = self.task.base.position, self.task.top.position
        above = np.array([base[0], base[1], STACKED_Z_M + 0.06])
        if self.phase in ("carry", "place") and not self.holding():
            self.enter("approach", now_s)  # dropped it: start over
            return Plan(np.zeros(6), gripper_closed=False)
        if self.phase == "carry":
            twist, err, _ = self.servo(above, self._yaw, point_m=top)
            if np.linalg.norm(above[:2] - top[:2]) < 0.006 and err < 0.012:
                self.enter("place", now_s)
            return Plan(twist, gripper_closed=True)
        if self.phase == "place":
            goal = np.array([base[0], base[1], STACKED_Z_M + 0.004])
            twist, err, _ = self.servo(goal, self._yaw, point_m=top, max_speed_m_s=0.06)
            if err < 0.004 or (err < 0.01 and self.time_in_phase(now_s) > 2.0):
                self._release_xy = self.robot.tcp_pose()[0][:2]
                self.enter("release", now_s)
            return Plan(twist, gripper_closed=True)
        position, _ = self.robot.tcp_pose()
        if self.phase == "release":
            twist, _, _ = self.servo(np.array([*self._release_xy, position[2]]), self._yaw)
            if self.time_in_phase(now_s) > 0.4:
                self.enter("back_off", now_s)
            return Plan(twist, gripper_closed=False)
        # back_off: rise straight up; done once the fingers are clear and the stack stands.
        twist, _, _ = self.servo(np.array([*self._release_xy, 0.25]), self._yaw)
        clear = position[2] > top[2] + 0.06
        if clear and not self.task.is_success() and top[2] < 0.03:
            self.enter("approach", now_s)  # it fell off: pick it up again
        return Plan(twist, gripper_closed=False, done=clear and self.task.is_success())


@register_task
class StackTask(Task):
    name = "stack"
    description = "stack the small red cube on the blue cube and release it"
    max_duration_s = 25.0

    def add_objects(self, worldbody: ET.Element, asset: ET.Element) -> None:
        add_cube(worldbody, name=TOP, half_size_m=TOP_HALF_M, rgba="0.85 0.15 0.1 1")
        add_cube(worldbody, name=BASE, half_size_m=BASE_HALF_M, rgba="0.15 0.3 0.85 1")

    def bind(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        super().bind(model, data)
        self.top = FreeBody(model, data, TOP)
        self.base = FreeBody(model, data, BASE)
        self._fingers = finger_geoms(model)

    def reset(self, rng: np.random.Generator) -> None:
        base_xy = sample_xy(rng)
        top_xy = sample_xy(rng, away_from=[base_xy], min_distance_m=0.12)
        self.base.place(np.array([*base_xy, BASE_HALF_M]), rng.uniform(-np.pi / 4, np.pi / 4))
        self.top.place(np.array([*top_xy, TOP_HALF_M]), rng.uniform(-np.pi / 4, np.pi / 4))

    def is_success(self) -> bool:
        """Top cube resting on the base cube, centred within the base's face, not held."""
        top, base = self.top.position, self.base.position
        centred = np.linalg.norm(top[:2] - base[:2]) < BASE_HALF_M
        on_top = abs(top[2] - base[2] - (BASE_HALF_M + TOP_HALF_M)) < 0.01
        released = not in_contact(self.data, self.top.geom_ids, self._fingers)
        return bool(centred and on_top and released and self.top.speed_m_s < 0.05)

    def make_expert(
        self, *, robot: SimRobot, rng: np.random.Generator, noise_m_s: float
    ) -> ScriptedExpert:
        return StackExpert(task=self, robot=robot, rng=rng, noise_m_s=noise_m_s)

    def object_poses(self) -> dict[str, np.ndarray]:
        return {TOP: self.top.pose_vector(), BASE: self.base.pose_vector()}
