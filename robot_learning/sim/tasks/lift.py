"""Lift: grasp a cube from the table and raise it 10 cm."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from robot_learning.sim.experts import Plan, ScriptedExpert
from robot_learning.sim.robot import SimRobot
from robot_learning.sim.tasks.base import FreeBody, Task, add_cube, sample_xy
from robot_learning.sim.tasks.registry import register_task

CUBE = "cube"
CUBE_HALF_SIZE_M = 0.025
LIFT_HEIGHT_M = 0.10

# Where the cube may start (base frame y, metres), by the task option ``objects``: "any" (the
# default: the whole table), "robot" (the right half, y < 0) and "novel" (the far left,
# y > 0.08). Robot demos collected with objects=robot never see a cube in the novel region,
# so a policy that picks it there learnt that from human videos (MT-pi's transfer check).
OBJECT_REGIONS_Y_M: dict[str, tuple[float, float]] = {
    "any": (-0.2, 0.2),
    "robot": (-0.2, 0.0),
    "novel": (0.08, 0.2),
}


class PickExpert(ScriptedExpert):
    """Approach a cube from above, grasp it across two faces, lift it to ``carry_z_m``."""

    hover_m = 0.10
    carry_z_m = 0.20

    def __init__(self, *, cube: FreeBody, cube_half_size_m: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cube, self.half_m = cube, cube_half_size_m
        self._grasp_xy: np.ndarray | None = None
        self._grasp_tcp: np.ndarray | None = None
        self._yaw = 0.0

    def holding(self) -> bool:
        width = self.robot.read_state().gripper_width_m
        return 1.2 * self.half_m < width < 2.0 * self.half_m + 0.01

    def pick_plan(self, now_s: float) -> Plan | None:
        """The pick phases; None once the cube is held at carry height (subclass takes over)."""
        if not self.phase:
            self.enter("approach", now_s)
        cube = self.cube.position
        if self.phase == "approach":
            self._yaw = self.grasp_yaw(self.cube.mat)
            twist, err, rot = self.servo(cube + [0.0, 0.0, self.hover_m], self._yaw)
            # Over the cube and turned to it: descend. A hand already below the hover height
            # (a policy that starts down early) is on its way, not lost, if it is within 2 cm
            # and ~11 degrees of the grasp: the rest is corrected on the way down (the open
            # fingers clear the cube by 1.5 cm a side).
            position, _ = self.robot.tcp_pose()
            off_centre = np.linalg.norm(position[:2] - cube[:2])
            below = position[2] < cube[2] + self.hover_m - 0.012
            if (err < 0.012 and rot < 0.05) or (below and off_centre < 0.02 and rot < 0.2):
                self.enter("descend", now_s)
            return Plan(twist, gripper_closed=False)
        if self.phase == "descend":
            self._yaw = self.grasp_yaw(self.cube.mat)
            goal = np.array([cube[0], cube[1], max(cube[2], 0.015)])
            twist, err, rot = self.servo(goal, self._yaw, max_speed_m_s=0.12)
            position, _ = self.robot.tcp_pose()
            if np.linalg.norm(position[:2] - cube[:2]) > 0.03:
                self.enter("approach", now_s)
            elif err < 0.006 or (err < 0.012 and self.time_in_phase(now_s) > 3.0):
                self._grasp_xy = cube[:2].copy()
                self._grasp_tcp = self.robot.tcp_pose()[0]
                self.enter("close", now_s)
            return Plan(twist, gripper_closed=False)
        if self.phase == "close":
            twist, _, _ = self.servo(self._grasp_tcp, self._yaw)  # hold still, do not press
            if self.time_in_phase(now_s) > 0.4:
                self.enter("lift", now_s)
            return Plan(twist, gripper_closed=True)
        if self.phase == "lift":
            if not self.holding():
                self.enter("approach", now_s)
                return Plan(np.zeros(6), gripper_closed=False)
            twist, err, _ = self.servo(np.array([*self._grasp_xy, self.carry_z_m]), self._yaw)
            if err < 0.02:
                return None
            return Plan(twist, gripper_closed=True)
        return None


class LiftExpert(PickExpert):
    def __init__(self, *, task: LiftTask, **kwargs) -> None:
        super().__init__(cube=task.cube, cube_half_size_m=CUBE_HALF_SIZE_M, **kwargs)
        self.task = task

    def plan(self, now_s: float) -> Plan:
        plan = self.pick_plan(now_s)
        if plan is None:  # held at carry height: hold still
            twist, _, _ = self.servo(np.array([*self._grasp_xy, self.carry_z_m]), self._yaw)
            plan = Plan(twist, gripper_closed=True)
        plan.done = self.phase == "lift" and self.task.is_success()
        return plan


@register_task
class LiftTask(Task):
    name = "lift"
    description = "grasp the red cube and lift it 10 cm above the table"
    max_duration_s = 15.0

    def __init__(self, objects: str = "any") -> None:
        super().__init__()
        self.objects = self.checked_option("objects", objects, OBJECT_REGIONS_Y_M)

    def add_objects(self, worldbody: ET.Element, asset: ET.Element) -> None:
        add_cube(worldbody, name=CUBE, half_size_m=CUBE_HALF_SIZE_M, rgba="0.85 0.15 0.1 1")

    def bind(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        super().bind(model, data)
        self.cube = FreeBody(model, data, CUBE)

    def reset(self, rng: np.random.Generator) -> None:
        y_low, y_high = OBJECT_REGIONS_Y_M[self.objects]
        xy = sample_xy(rng, low=(0.4, y_low), high=(0.62, y_high))  # "any": draws as before
        self.cube.place(np.array([*xy, CUBE_HALF_SIZE_M]), rng.uniform(-np.pi / 4, np.pi / 4))

    def is_success(self) -> bool:
        return bool(self.cube.position[2] > CUBE_HALF_SIZE_M + LIFT_HEIGHT_M)

    def make_expert(
        self, *, robot: SimRobot, rng: np.random.Generator, noise_m_s: float
    ) -> ScriptedExpert:
        return LiftExpert(task=self, robot=robot, rng=rng, noise_m_s=noise_m_s)

    def object_poses(self) -> dict[str, np.ndarray]:
        return {CUBE: self.cube.pose_vector()}
