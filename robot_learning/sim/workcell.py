"""The lockstep simulated workcell: FR3, table, task objects and cameras in one MuJoCo model.

``step`` advances exactly one control period of simulated time and returns; nothing sleeps,
so the workcell runs as fast as the CPU allows. Simulated time is the station clock of every
timestamp it produces. Images are rendered only when asked for (``render``), so a caller
renders at the observation rate, not at the physics or control rate.

Everything random in an episode (object poses, lights, small camera pose errors, the
expert's noise) follows from the seed passed to ``reset``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType

import mujoco
import numpy as np

from robot_learning.geometry import (
    invert_transform,
    make_transform,
    mat_from_axis_angle,
    mat_from_quat_xyzw,
    quat_wxyz_from_xyzw,
    quat_xyzw_from_mat,
    quat_xyzw_from_wxyz,
)
from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.limits import RobotLimits
from robot_learning.sim import scene
from robot_learning.sim.camera import SceneRenderer, SimCamera, SimLens
from robot_learning.sim.experts import ScriptedExpert
from robot_learning.sim.hand import PARKED_JOINTS_RAD, SimHand, add_hand
from robot_learning.sim.robot import SimRobot, SimServo
from robot_learning.sim.tasks import Task, make_task
from robot_learning.track_geometry import (
    FINGER_ROOT_FROM_FLANGE_M,
    FINGERTIP_FROM_ROOT_M,
    CameraView,
)

logger = logging.getLogger(__name__)

DEFAULT_CAMERAS = ("front", "wrist")
CAMERA_POSITION_NOISE_M = 0.005
CAMERA_ROTATION_NOISE_RAD = 0.01


class Workcell:
    """A task in the simulated workcell. Context manager; ``close`` frees the renderer."""

    def __init__(
        self,
        *,
        task: str = "lift",
        seed: int = 0,
        cameras: Sequence[str] = DEFAULT_CAMERAS,
        image_size: tuple[int, int] = (240, 320),
        image_sizes: Mapping[str, tuple[int, int]] | None = None,
        lenses: Mapping[str, SimLens] | None = None,
        boards: Sequence[str] = (),
        control_hz: float = 100.0,
        with_depth: bool = False,
        randomize_appearance: bool = True,
        light_meshes: bool = True,
        limits: RobotLimits | None = None,
        servo: SimServo | None = None,
        human_hand: bool = False,
        task_options: Mapping[str, str] | None = None,
    ) -> None:
        """``image_size`` (height, width) for every camera but those in ``image_sizes``;
        ``lenses`` adds distortion and noise per camera; ``boards`` mounts ChArUco boards
        (``scene.BOARD_MOUNTS``: "gripper", "table") for calibration. ``human_hand`` adds
        the hand stand-in (``self.hand``, see sim/hand.py) and parks the arm out of the
        fixed cameras' view at every reset: the scene of a human video. ``task_options``:
        the task's own options (push: ``targets``, see tasks/push.py)."""
        self._check_names([*cameras, *(image_sizes or {}), *(lenses or {})])
        unknown_boards = [b for b in boards if b not in scene.BOARD_MOUNTS]
        if unknown_boards:
            raise ValueError(
                f"unknown board mount(s) {unknown_boards}; known: {', '.join(scene.BOARD_MOUNTS)}"
            )
        self.task: Task = make_task(task, **dict(task_options or {}))
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.image_sizes = {
            name: tuple(int(v) for v in (image_sizes or {}).get(name, self.image_size))
            for name in scene.CAMERA_SPECS
        }
        self.lenses = {name: (lenses or {}).get(name, SimLens()) for name in scene.CAMERA_SPECS}
        self.boards = tuple(boards)
        xml = scene.build_scene_xml(
            add_objects=self.task.add_objects,
            max_image_size=(
                max(480, *(size[0] for size in self.image_sizes.values())),
                max(640, *(size[1] for size in self.image_sizes.values())),
            ),
            light_meshes=light_meshes,
            boards=self.boards,
            add_extras=(add_hand,) if human_hand else (),
        )
        self.model = mujoco.MjModel.from_xml_string(xml, assets=scene.board_textures(self.boards))
        self.data = mujoco.MjData(self.model)
        self.task.bind(self.model, self.data)
        self.robot = SimRobot(
            model=self.model,
            data=self.data,
            control_period_s=1.0 / control_hz,
            limits=limits,
            servo=servo,
        )
        self.robot.connect()
        self.hand = SimHand(self.model, self.data) if human_hand else None
        self.camera_names = tuple(cameras)
        self._with_depth = with_depth
        self._randomize_appearance = randomize_appearance
        self._renderers: dict[tuple[int, int], SceneRenderer] = {}
        self._cameras: dict[str, SimCamera] = {}
        self._nominal = {
            "cam_pos": self.model.cam_pos.copy(),
            "cam_quat": self.model.cam_quat.copy(),
            "light_diffuse": self.model.light_diffuse.copy(),
            "light_dir": self.model.light_dir.copy(),
            "headlight_ambient": self.model.vis.headlight.ambient.copy(),
        }
        self.seed = seed
        self._episode_rng = np.random.default_rng(seed)
        self.reset(seed)

    # -- episode -----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> RobotState:
        """Start an episode: arm at home, objects, lights and camera poses drawn from ``seed``."""
        if seed is None:
            seed = int(self._episode_rng.integers(2**31))
        self.seed = seed
        rng = np.random.default_rng(seed)
        self._expert_rng = np.random.default_rng([seed, 1])
        mujoco.mj_resetData(self.model, self.data)
        if self.hand is not None:
            self.robot.reset(np.array(PARKED_JOINTS_RAD))
            self.hand.park()
        else:
            self.robot.reset()
        self.task.reset(rng)
        self._apply_appearance(rng if self._randomize_appearance else None)
        mujoco.mj_forward(self.model, self.data)
        return self.robot.read_state()

    def step(self, target: CartesianTarget) -> RobotState:
        """Send ``target`` and advance one control period; returns the new state."""
        self.robot.send_cartesian_target(target)
        self.robot.advance()
        return self.robot.read_state()

    def is_success(self) -> bool:
        return self.task.is_success()

    def make_expert(self, *, noise_m_s: float = 0.02) -> ScriptedExpert:
        """The task's scripted expert for this episode (its noise is seeded by the episode)."""
        return self.task.make_expert(robot=self.robot, rng=self._expert_rng, noise_m_s=noise_m_s)

    @property
    def time_s(self) -> float:
        return float(self.data.time)

    @property
    def control_period_s(self) -> float:
        return self.robot.control_period_s

    def home_target(self) -> CartesianTarget:
        """The current TCP pose as a target (what a teleop session starts from)."""
        position, mat = self.robot.tcp_pose()
        return CartesianTarget(position, quat_xyzw_from_mat(mat), timestamp_s=self.time_s)

    # -- cameras -----------------------------------------------------------------------------
    @property
    def cameras(self) -> dict[str, SimCamera]:
        """Camera implementations by name (the renderer starts on first use)."""
        return {name: self.camera(name) for name in self.camera_names}

    def camera(self, name: str) -> SimCamera:
        """The camera ``name`` (any camera of the scene, not only ``camera_names``)."""
        if name not in self._cameras:
            self._check_names([name])
            index = list(scene.CAMERA_SPECS).index(name)
            self._cameras[name] = SimCamera(
                name=name,
                renderer=self._get_renderer(self.image_sizes[name]),
                with_depth=self._with_depth,
                lens=self.lenses[name],
                noise_seed=(self.seed, index),
            )
        return self._cameras[name]

    def render(self, camera_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """(H, W, 3) uint8 RGB per camera, of the current state (through its lens)."""
        return {name: self.camera(name).render_rgb() for name in self._names(camera_names)}

    def render_depth(self, camera_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """(H, W) uint16 depth in mm per camera (ideal pinhole: no lens applied)."""
        return {
            name: self._get_renderer(self.image_sizes[name]).depth_mm(name)
            for name in self._names(camera_names)
        }

    def _names(self, camera_names: Sequence[str] | None) -> tuple[str, ...]:
        names = self.camera_names if camera_names is None else tuple(camera_names)
        self._check_names(names)
        return names

    @staticmethod
    def _check_names(camera_names: Sequence[str]) -> None:
        unknown = [n for n in camera_names if n not in scene.CAMERA_SPECS]
        if unknown:
            raise ValueError(
                f"unknown sim camera(s) {unknown}; known: {', '.join(scene.CAMERA_SPECS)}"
            )

    def _get_renderer(self, image_size: tuple[int, int]) -> SceneRenderer:
        if image_size not in self._renderers:
            self._renderers[image_size] = SceneRenderer(
                model=self.model, data=self.data, image_size=image_size
            )
        return self._renderers[image_size]

    # -- ground truth (what calibration estimates) ---------------------------------------------
    def T_base_hand(self) -> np.ndarray:
        """The hand (TCP) pose the robot reports, as a 4x4 transform in the base frame."""
        position, mat = self.robot.tcp_pose()
        return make_transform(mat, position)

    def true_T_base_camera(self, name: str) -> np.ndarray:
        """Where camera ``name``'s optical frame is now (it moves with the hand if on it)."""
        self._check_names([name])
        return self._get_renderer(self.image_sizes[name]).extrinsics(name)

    def true_T_hand_camera(self, name: str) -> np.ndarray:
        """Hand (TCP) to optical frame of a camera mounted on the hand (the wrist camera)."""
        if scene.CAMERA_SPECS[name].parent_body != scene.HAND_BODY:
            raise ValueError(f"camera {name!r} is fixed in the world, not on the hand")
        return invert_transform(self.T_base_hand()) @ self.true_T_base_camera(name)

    def camera_views(self, names: Sequence[str] | None = None) -> dict[str, CameraView]:
        """The fixed cameras as calibrated views (true intrinsics and pose of this episode):
        what a station's calibration file gives a policy that acts in 3D (MT-pi)."""
        return {
            name: CameraView(name, self.camera(name).intrinsics, self.true_T_base_camera(name))
            for name in self._names(names)
        }

    def true_gripper_keypoints(self) -> np.ndarray:
        """(3, 3) the gripper's track points (``keys.TRACK_POINTS``: the two fingertips and
        the centre between the finger roots) in the base frame, from the finger bodies
        themselves (the hand body's frame is the flange): the ground truth that
        ``track_geometry.gripper_keypoints`` models."""
        points = []
        for body in scene.FINGER_BODIES:
            finger = self.data.body(body)
            points.append(finger.xpos + finger.xmat.reshape(3, 3) @ [0, 0, FINGERTIP_FROM_ROOT_M])
        hand = self.data.body(scene.HAND_BODY)
        root = hand.xpos + hand.xmat.reshape(3, 3) @ [0, 0, FINGER_ROOT_FROM_FLANGE_M]
        return np.stack([*points, root])

    def true_board_pose(self, mount: str) -> np.ndarray:
        """T_hand_board for the "gripper" mount, T_base_board for the "table" mount."""
        if mount not in self.boards:
            raise ValueError(f"no {mount!r} board in this workcell (boards: {self.boards})")
        board_mount = scene.BOARD_MOUNTS[mount]
        if board_mount.parent_body is None:
            return board_mount.T_parent_board.copy()
        hand = self.data.body(scene.HAND_BODY)
        T_base_handbody = make_transform(hand.xmat.reshape(3, 3), hand.xpos)
        return invert_transform(self.T_base_hand()) @ T_base_handbody @ board_mount.T_parent_board

    def _apply_appearance(self, rng: np.random.Generator | None) -> None:
        """Lights and camera poses: nominal, or perturbed from ``rng``."""
        nominal = self._nominal
        self.model.cam_pos[:] = nominal["cam_pos"]
        self.model.cam_quat[:] = nominal["cam_quat"]
        self.model.light_diffuse[:] = nominal["light_diffuse"]
        self.model.light_dir[:] = nominal["light_dir"]
        self.model.vis.headlight.ambient[:] = nominal["headlight_ambient"]
        if rng is None:
            return
        for cam in range(self.model.ncam):
            self.model.cam_pos[cam] += rng.normal(0.0, CAMERA_POSITION_NOISE_M, 3).clip(-0.01, 0.01)
            axis = rng.normal(size=3)
            delta = mat_from_axis_angle(axis, rng.normal(0.0, CAMERA_ROTATION_NOISE_RAD))
            nominal_mat = mat_from_quat_xyzw(quat_xyzw_from_wxyz(nominal["cam_quat"][cam]))
            self.model.cam_quat[cam] = quat_wxyz_from_xyzw(
                quat_xyzw_from_mat(nominal_mat @ delta, hemisphere=np.array([0.0, 0.0, 0.0, 1.0]))
            )
        self.model.light_diffuse[:] *= rng.uniform(0.7, 1.25, size=(self.model.nlight, 1))
        direction = self.model.light_dir + rng.normal(0.0, 0.15, size=self.model.light_dir.shape)
        self.model.light_dir[:] = direction / np.linalg.norm(direction, axis=1, keepdims=True)
        self.model.vis.headlight.ambient[:] = rng.uniform(0.15, 0.35)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers, self._cameras = {}, {}
        self.robot.disconnect()

    def __enter__(self) -> Workcell:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
