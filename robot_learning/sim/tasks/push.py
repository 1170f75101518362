"""Push: slide a cube across the table onto a target disc."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from robot_learning.geometry import TOP_DOWN_MAT, wrap_angle, yaw_of_mat
from robot_learning.sim.experts import Plan, ScriptedExpert
from robot_learning.sim.robot import SimRobot
from robot_learning.sim.tasks.base import FreeBody, Task, add_cube, add_target_marker, sample_xy
from robot_learning.sim.tasks.registry import register_task

CUBE = "cube"
TARGET = "target"
CUBE_HALF_SIZE_M = 0.025
SUCCESS_RADIUS_M = 0.025
PUSH_TCP_Z_M = 0.022  # fingertips about 1 cm above the table, pushing the lower half
HOVER_Z_M = 0.10
STANDOFF_M = 0.045  # start this far behind the cube's rear face
SETTLED_RADIUS_M = SUCCESS_RADIUS_M - 0.008  # losing the cube inside this ends the push


class PushExpert(ScriptedExpert):
    """Closed gripper as a paddle: get behind the cube, push along the cube-to-target line."""

    def __init__(self, *, task: PushTask, **kwargs) -> None:
        super().__init__(**kwargs)
        self.task = task
        self._yaw = 0.0
        self._home_yaw: float | None = None

    def _push_direction(self) -> tuple[np.ndarray, float]:
        delta = (self.task.target_xy - self.task.cube.position[:2]).copy()
        distance = float(np.linalg.norm(delta))
        return np.append(delta / max(distance, 1e-9), 0.0), distance

    def plan(self, now_s: float) -> Plan:
        position, mat = self.robot.tcp_pose()
        if not self.phase:
            self.enter("approach", now_s)
            self._home_yaw = yaw_of_mat(mat @ TOP_DOWN_MAT)
        cube = self.task.cube.position
        u, distance = self._push_direction()
        behind = cube - u * (CUBE_HALF_SIZE_M + STANDOFF_M)
        if self.phase == "approach":
            # The paddle is symmetric under a half turn: of the two yaws, take the one nearer
            # the home yaw, so a long episode never winds the wrist into its joint limit.
            assert self._home_yaw is not None
            push_yaw = float(np.arctan2(u[1], u[0]))
            self._yaw = self._home_yaw + wrap_angle(push_yaw - self._home_yaw, np.pi)
            twist, err, rot = self.servo(np.array([behind[0], behind[1], HOVER_Z_M]), self._yaw)
            if err < 0.012 and rot < 0.05:
                self.enter("lower", now_s)
            return Plan(twist, gripper_closed=True)
        if self.phase == "lower":
            twist, err, _ = self.servo(np.array([behind[0], behind[1], PUSH_TCP_Z_M]), self._yaw)
            if err < 0.008:
                self.enter("push", now_s)
            return Plan(twist, gripper_closed=True)
        if self.phase == "push":
            return self._push(now_s, cube, u, distance, position)
        if self.phase == "retreat":
            twist, _, _ = self.servo(np.array([position[0], position[1], HOVER_Z_M]), self._yaw)
            if position[2] > HOVER_Z_M - 0.02:
                self.enter("approach", now_s)
            return Plan(twist, gripper_closed=True)
        # "done": hold still above the cube; re-push if it is no longer on the target.
        twist, _, _ = self.servo(np.array([position[0], position[1], HOVER_Z_M]), self._yaw)
        if distance > SUCCESS_RADIUS_M:
            self.enter("retreat", now_s)
        return Plan(twist, gripper_closed=True, done=self.task.is_success())

    def _push(
        self, now_s: float, cube: np.ndarray, u: np.ndarray, distance: float, position: np.ndarray
    ) -> Plan:
        if distance < 0.01:
            self.enter("done", now_s)
            return Plan(np.zeros(6), gripper_closed=True)
        relative = cube - position
        along = float(relative[:2] @ u[:2])
        lateral = relative - along * u
        lateral[2] = 0.0
        # Lost the cube, or the fingertips are being dragged into the table (the stiff arm
        # then builds up contact force fast): lift off and line up again, as a person would.
        dragged_down = position[2] < PUSH_TCP_Z_M - 0.008
        if along < CUBE_HALF_SIZE_M - 0.005 or np.linalg.norm(lateral) > 0.02 or dragged_down:
            # Already well inside the disc: stop there rather than line up again for the last
            # centimetre. Those late re-tries (a lift, a new approach) made the demos switch
            # phase where a policy sees nothing different, and cost seconds (README, push).
            self.enter("done" if distance < SETTLED_RADIUS_M else "retreat", now_s)
            return Plan(np.zeros(6), gripper_closed=True)
        speed = float(np.clip(2.0 * distance, 0.03, 0.1))
        linear = (
            speed * u + 2.0 * lateral + np.array([0.0, 0.0, 3.0 * (PUSH_TCP_Z_M - position[2])])
        )
        twist, _, _ = self.servo(position, self._yaw)  # orientation hold only
        twist[:3] = linear
        return Plan(twist, gripper_closed=True)


# Where push targets may lie (base frame y, metres), by the task option ``targets``: "any"
# (the default: the whole table), "robot" (the right side, y < 0.05) and "novel" (the far
# left, y > 0.12). Robot demos collected with targets=robot never see a target in the novel
# region, so a policy that pushes there learnt it from human videos (targets=novel): the
# transfer acceptance of MT-pi.
TARGET_REGIONS_Y_M: dict[str, tuple[float, float]] = {
    "any": (-0.25, 0.25),
    "robot": (-0.25, 0.05),
    "novel": (0.12, 0.25),
}


@register_task
class PushTask(Task):
    name = "push"
    description = "push the red cube onto the green target disc"
    max_duration_s = 20.0

    def __init__(self, targets: str = "any") -> None:
        super().__init__()
        self.targets = self.checked_option("targets", targets, TARGET_REGIONS_Y_M)

    def add_objects(self, worldbody: ET.Element, asset: ET.Element) -> None:
        add_cube(worldbody, name=CUBE, half_size_m=CUBE_HALF_SIZE_M, rgba="0.85 0.15 0.1 1")
        add_target_marker(worldbody, name=TARGET, radius_m=SUCCESS_RADIUS_M + CUBE_HALF_SIZE_M)

    def bind(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        super().bind(model, data)
        self.cube = FreeBody(model, data, CUBE)
        self._target_mocap = int(model.body_mocapid[model.body(TARGET).id])

    @property
    def target_xy(self) -> np.ndarray:
        return self.data.mocap_pos[self._target_mocap, :2]

    def reset(self, rng: np.random.Generator) -> None:
        y_low, y_high = TARGET_REGIONS_Y_M[self.targets]
        found = False
        for _ in range(100):  # "any" finds a target for its first cube: draws as before
            cube_xy = sample_xy(rng, low=(0.42, -0.15), high=(0.6, 0.15))
            for _ in range(1000):
                angle = rng.uniform(-np.pi, np.pi)
                offset = rng.uniform(0.12, 0.2) * np.array([np.cos(angle), np.sin(angle)])
                target_xy = cube_xy + offset
                if np.all(target_xy >= (0.35, y_low)) and np.all(target_xy <= (0.68, y_high)):
                    found = True
                    break
            if found:
                break
        self.cube.place(np.array([*cube_xy, CUBE_HALF_SIZE_M]), rng.uniform(-np.pi / 4, np.pi / 4))
        self.data.mocap_pos[self._target_mocap] = [*target_xy, 0.0]

    def is_success(self) -> bool:
        offset = self.cube.position[:2] - self.target_xy
        return bool(np.linalg.norm(offset) < SUCCESS_RADIUS_M and self.cube.position[2] < 0.04)

    def make_expert(
        self, *, robot: SimRobot, rng: np.random.Generator, noise_m_s: float
    ) -> ScriptedExpert:
        return PushExpert(task=self, robot=robot, rng=rng, noise_m_s=noise_m_s)

    def object_poses(self) -> dict[str, np.ndarray]:
        target = np.array([*self.target_xy, 0.0, 0.0, 0.0, 0.0, 1.0])
        return {CUBE: self.cube.pose_vector(), TARGET: target}
