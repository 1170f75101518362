"""What a task is: objects it adds to the scene, how it randomizes them, when it succeeded."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np

from robot_learning.geometry import quat_from_rotvec_xyzw, quat_wxyz_from_xyzw, quat_xyzw_from_wxyz

if TYPE_CHECKING:
    from robot_learning.sim.experts import ScriptedExpert
    from robot_learning.sim.robot import SimRobot


class Task(ABC):
    """One manipulation task. Subclasses set ``name`` and register with ``@register_task``."""

    name: ClassVar[str]
    description: ClassVar[str]
    max_duration_s: ClassVar[float] = 20.0

    def __init__(self) -> None:
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None

    def checked_option(self, option: str, value: str, choices: Iterable[str]) -> str:
        """``value`` of a task option (``--task-option option=value``) if it is one of
        ``choices``; otherwise a ValueError naming the task, the option and the choices."""
        choices = list(choices)
        if value not in choices:
            raise ValueError(f"{self.name}: {option}={value!r}; choose one of {', '.join(choices)}")
        return value

    @abstractmethod
    def add_objects(self, worldbody: ET.Element, asset: ET.Element) -> None:
        """Add the task's bodies to the MJCF before it is compiled."""

    def bind(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """Look up the compiled objects; called once after the model is built."""
        self.model, self.data = model, data

    @abstractmethod
    def reset(self, rng: np.random.Generator) -> None:
        """Place the objects for a new episode (the arm is already at home)."""

    @abstractmethod
    def is_success(self) -> bool:
        """Whether the current physics state solves the task (privileged check)."""

    @abstractmethod
    def make_expert(
        self, *, robot: SimRobot, rng: np.random.Generator, noise_m_s: float
    ) -> ScriptedExpert:
        """A scripted expert that solves this task from the privileged sim state."""

    def object_poses(self) -> dict[str, np.ndarray]:
        """(7,) position + quaternion (x, y, z, w) of each task object, for logging."""
        return {}


class FreeBody:
    """A free-floating body (a cube): read and set its pose in the physics state."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, body_name: str) -> None:
        self._data = data
        self.body_id = model.body(body_name).id
        joint = model.body_jntadr[self.body_id]
        if joint < 0 or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
            raise ValueError(f"body {body_name!r} has no free joint")
        self._qpos = int(model.jnt_qposadr[joint])
        self._qvel = int(model.jnt_dofadr[joint])
        self.geom_ids = frozenset(
            g for g in range(model.ngeom) if model.geom_bodyid[g] == self.body_id
        )

    @property
    def position(self) -> np.ndarray:
        return self._data.xpos[self.body_id].copy()

    @property
    def mat(self) -> np.ndarray:
        return self._data.xmat[self.body_id].reshape(3, 3).copy()

    @property
    def speed_m_s(self) -> float:
        return float(np.linalg.norm(self._data.qvel[self._qvel : self._qvel + 3]))

    def pose_vector(self) -> np.ndarray:
        return np.concatenate([self.position, quat_xyzw_from_wxyz(self._data.xquat[self.body_id])])

    def place(self, position: np.ndarray, yaw_rad: float) -> None:
        self._data.qpos[self._qpos : self._qpos + 3] = position
        self._data.qpos[self._qpos + 3 : self._qpos + 7] = quat_wxyz_from_xyzw(
            quat_from_rotvec_xyzw(np.array([0.0, 0.0, yaw_rad]))
        )
        self._data.qvel[self._qvel : self._qvel + 6] = 0.0


def add_cube(
    worldbody: ET.Element, *, name: str, half_size_m: float, rgba: str, mass_kg: float = 0.1
) -> None:
    body = ET.SubElement(worldbody, "body", name=name, pos=f"0.5 0 {half_size_m}")
    ET.SubElement(body, "freejoint", name=f"{name}_joint")
    ET.SubElement(
        body,
        "geom",
        name=f"{name}_geom",
        type="box",
        size=" ".join([f"{half_size_m:g}"] * 3),
        rgba=rgba,
        mass=f"{mass_kg:g}",
        friction="1 0.005 0.0001",
        condim="4",
    )


def add_target_marker(worldbody: ET.Element, *, name: str, radius_m: float) -> None:
    """A flat disc on the table, visual only (a mocap body, so reset can move it)."""
    body = ET.SubElement(worldbody, "body", name=name, mocap="true", pos="0.5 0 0")
    ET.SubElement(
        body,
        "geom",
        name=f"{name}_geom",
        type="cylinder",
        size=f"{radius_m:g} 0.0005",
        pos="0 0 0.0006",
        rgba="0.1 0.8 0.2 1",
        contype="0",
        conaffinity="0",
    )


def in_contact(data: mujoco.MjData, geoms_a: frozenset[int], geoms_b: frozenset[int]) -> bool:
    """Whether any geom of one set touches any geom of the other."""
    for i in range(data.ncon):
        g1, g2 = int(data.contact.geom1[i]), int(data.contact.geom2[i])
        if (g1 in geoms_a and g2 in geoms_b) or (g2 in geoms_a and g1 in geoms_b):
            return True
    return False


def finger_geoms(model: mujoco.MjModel) -> frozenset[int]:
    bodies = {model.body(n).id for n in ("left_finger", "right_finger")}
    return frozenset(g for g in range(model.ngeom) if model.geom_bodyid[g] in bodies)


def sample_xy(
    rng: np.random.Generator,
    *,
    low: tuple[float, float] = (0.4, -0.2),
    high: tuple[float, float] = (0.62, 0.2),
    away_from: list[np.ndarray] | None = None,
    min_distance_m: float = 0.0,
) -> np.ndarray:
    """A uniform table position at least ``min_distance_m`` from every point in ``away_from``."""
    for _ in range(1000):
        xy = rng.uniform(low, high)
        if all(np.linalg.norm(xy - p[:2]) >= min_distance_m for p in away_from or []):
            return xy
    raise RuntimeError(f"no table position {min_distance_m} m away from {away_from}")
