"""The whole calibration procedure in the simulated workcell, measured against ground truth.

Two sessions, as in a lab: the wrist camera (eye-in-hand) looks at a board on the table
while the arm orbits it; the fixed cameras (eye-to-hand) watch a board on the gripper while
the arm presents it to each camera in turn, every fixed camera capturing at every pose
(those shared views give the camera-to-camera extrinsics). Images go through a realistic
lens (distortion + noise) at a realistic resolution. Poses are planned from the cameras'
nominal (CAD) mounting only; the truth is read from the simulator at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from calibration.calibration_file import WorkcellCalibration
from calibration.capture_dir import CaptureDir
from calibration.detection import BoardDetector, BoardNotFoundError
from calibration.poses import PoseLimits, PoseVisitor, orbit_poses, state_transform
from calibration.procedure import (
    ROBOT_POSE_STD,
    CameraReport,
    CapturedView,
    calibrate_camera,
    calibrate_pairs,
    workcell_calibration,
)
from robot_learning.geometry import (
    TOP_DOWN_MAT,
    make_transform,
    mat_from_rotvec,
    transform_error,
    transform_points,
)
from robot_learning.sim import scene
from robot_learning.sim.camera import REALISTIC_LENS, SimLens
from robot_learning.sim.workcell import Workcell

logger = logging.getLogger(__name__)

WORKCELL_NAME = "sim"
WRIST_DISTANCE_M = 0.33  # wrist camera to the table board at the start pose
FIXED_DISTANCE_M = {"front": 0.75, "side": 0.8}  # fixed camera to the gripper board


@dataclass(frozen=True)
class SimCalibrationConfig:
    """What the simulated calibration runs with."""

    seed: int = 0
    image_size: tuple[int, int] = (480, 640)
    views: int = 20  # poses per camera
    lens: SimLens = REALISTIC_LENS
    wrist_cameras: tuple[str, ...] = ("wrist",)
    fixed_cameras: tuple[str, ...] = ("front", "side")
    robot_pose_noise_mm: float = 0.0  # added to the reported hand poses (benchmarks)
    robot_pose_noise_deg: float = 0.0
    robot_pose_std: tuple[float, float] = ROBOT_POSE_STD  # what the solver assumes (mm, deg)
    holdout: bool = True

    def __post_init__(self) -> None:
        for name in (*self.wrist_cameras, *self.fixed_cameras):
            if name not in scene.CAMERA_SPECS:
                raise ValueError(f"unknown sim camera {name!r}; known: {list(scene.CAMERA_SPECS)}")
        if self.views < 6:
            raise ValueError(f"views must be at least 6 per camera, got {self.views}")


@dataclass
class SimCalibrationRun:
    """The reports per camera, the workcell calibration, and the errors against truth."""

    reports: dict[str, CameraReport]
    calibration: WorkcellCalibration
    errors: dict[str, dict[str, float]] = field(default_factory=dict)
    truth: dict[str, tuple] = field(default_factory=dict)  # name -> (intrinsics, pose)
    seconds: float = 0.0

    def summary(self) -> dict:
        """The figures of ``rl calibrate check --json``: worst over cameras at top level."""
        out: dict = {"seconds": round(self.seconds, 2), "cameras": sorted(self.errors)}
        keys = ("focal_error_pct", "principal_point_error_px", "handeye_translation_error_mm",
                "handeye_rotation_error_deg")  # fmt: skip
        for key in keys:
            out[key] = max(e[key] for e in self.errors.values())
        out.update(self.errors)
        return out


def run_sim_calibration(
    config: SimCalibrationConfig = SimCalibrationConfig(),
    *,
    progress: bool = True,
    save_capture: Path | None = None,
) -> SimCalibrationRun:
    """Capture, calibrate every camera and compare with the simulator's truth.

    ``save_capture`` keeps the images and hand poses as capture folders (``table/``,
    ``gripper/``) for an offline re-run with ``--capture``."""
    started = time.perf_counter()
    reports: dict[str, CameraReport] = {}
    truth: dict[str, tuple] = {}
    # wrist cameras watch the table board (eye-in-hand), fixed ones the gripper's (eye-to-hand)
    for board, cameras, mount in (
        ("table", config.wrist_cameras, "hand"),
        ("gripper", config.fixed_cameras, "fixed"),
    ):
        if not cameras:
            continue
        views, session_truth = capture_session(
            config, board, cameras, progress, _folder(save_capture, board)
        )
        truth.update(session_truth)
        for name in cameras:
            reports[name] = calibrate_camera(
                name, views[name], mount=mount, serial=f"sim-{name}", holdout=config.holdout,
                robot_pose_std=config.robot_pose_std,
            )  # fmt: skip
    pairs = calibrate_pairs(reports) if len(config.fixed_cameras) > 1 else {}
    boards = {m: scene.BOARD_MOUNTS[m].board for m in ("table", "gripper")}
    calibration = workcell_calibration(WORKCELL_NAME, reports, pairs, boards)
    run = SimCalibrationRun(reports, calibration, truth=truth)
    for name, report in reports.items():
        run.errors[name] = errors_against_truth(report, *truth[name])
    run.seconds = time.perf_counter() - started
    return run


def errors_against_truth(report: CameraReport, true_intrinsics, true_pose) -> dict[str, float]:
    estimated = report.calibration.intrinsics
    t_m, r_rad = transform_error(report.calibration.pose, true_pose)
    return {
        "focal_error_pct": 100.0
        * max(
            abs(estimated.fx - true_intrinsics.fx) / true_intrinsics.fx,
            abs(estimated.fy - true_intrinsics.fy) / true_intrinsics.fy,
        ),
        "principal_point_error_px": float(
            np.hypot(estimated.cx - true_intrinsics.cx, estimated.cy - true_intrinsics.cy)
        ),
        "handeye_translation_error_mm": 1000.0 * t_m,
        "handeye_rotation_error_deg": float(np.degrees(r_rad)),
        "reprojection_rms_px": report.hand_eye.rms_px,
        "views_used": len(report.hand_eye.view_rms_px),
    }


def _folder(root: Path | None, name: str) -> Path | None:
    return None if root is None else Path(root) / name


def capture_session(
    config: SimCalibrationConfig,
    mount: str,
    cameras: Sequence[str],
    progress: bool,
    save_to: Path | None = None,
) -> tuple[dict[str, list[CapturedView]], dict[str, tuple]]:
    """Visit the planned poses in a workcell with the ``mount`` board; detect in each camera.

    Returns the views per camera and, per camera, (true intrinsics, true pose): T_hand_camera
    for hand cameras, T_base_camera for fixed ones.
    """
    board = scene.BOARD_MOUNTS[mount].board
    detector = BoardDetector(board)
    rng = np.random.default_rng([config.seed, 7])
    noise_rng = np.random.default_rng([config.seed, 8])
    with Workcell(
        task="empty",
        seed=config.seed,
        cameras=tuple(cameras),
        image_size=config.image_size,
        lenses={name: config.lens for name in cameras},
        boards=(mount,),
    ) as workcell:
        poses = plan_poses(config, mount, cameras, rng)
        mounts = {
            n: ("hand" if n in config.wrist_cameras else "fixed", f"sim-{n}") for n in cameras
        }
        capture = None if save_to is None else CaptureDir.create(save_to, board, mounts)
        visitor = PoseVisitor(workcell.robot, wait=workcell.robot.advance)
        views: dict[str, list[CapturedView]] = {name: [] for name in cameras}
        skipped = 0
        for index, pose in enumerate(
            tqdm(poses, desc=f"capturing ({mount} board)", unit="pose", disable=not progress)
        ):
            state = visitor.move_to(pose)
            if state is None:
                skipped += 1
                continue
            T_base_hand = _noisy(state_transform(state), config, noise_rng)
            images = workcell.render(cameras)
            if capture is not None:
                capture.add(index, images, T_base_hand)
            for name in cameras:
                try:
                    detection = detector.detect(images[name], where=f"{name} view {index}")
                except BoardNotFoundError as exc:
                    logger.debug("%s", exc)
                    continue
                views[name].append(CapturedView(index, T_base_hand, detection))
        if capture is not None:
            capture.write_index()
        if skipped:
            logger.info("%d of %d poses could not be reached and were skipped", skipped, len(poses))
        truth = {}
        for name in cameras:
            camera = workcell.camera(name)
            on_hand = scene.CAMERA_SPECS[name].parent_body == scene.HAND_BODY
            pose = (
                workcell.true_T_hand_camera(name) if on_hand else workcell.true_T_base_camera(name)
            )
            truth[name] = (camera.intrinsics, pose)
    return views, truth


def plan_poses(
    config: SimCalibrationConfig, mount: str, cameras: Sequence[str], rng: np.random.Generator
) -> list[np.ndarray]:
    """Orbits around the board from the nominal camera mounting (never the true one)."""
    board_mount = scene.BOARD_MOUNTS[mount]
    width, height = board_mount.board.size_m
    centre_in_board = np.array([width / 2, height / 2, 0.0])
    limits = PoseLimits()
    poses: list[np.ndarray] = []
    if mount == "table":
        centre = transform_points(board_mount.T_parent_board, centre_in_board)[0]
        for name in cameras:
            T_hand_camera = scene.nominal_camera_pose(scene.CAMERA_SPECS[name])
            axis = TOP_DOWN_MAT @ T_hand_camera[:3, 2]
            camera_position = centre - WRIST_DISTANCE_M * axis
            start = make_transform(
                TOP_DOWN_MAT, camera_position - TOP_DOWN_MAT @ T_hand_camera[:3, 3]
            )
            poses += orbit_poses(
                start, centre, axis, config.views, rng=rng, limits=limits, spread_m=0.08
            )
        return poses
    T_hand_board = _tcp_from_hand_body(board_mount.T_parent_board)
    centre_in_hand = transform_points(T_hand_board, centre_in_board)[0]
    normal_in_hand = -T_hand_board[:3, 2]
    centres, sights = [], []
    for name in cameras:
        T_base_camera = scene.nominal_camera_pose(scene.CAMERA_SPECS[name])
        sight = T_base_camera[:3, 2]
        centre = T_base_camera[:3, 3] + FIXED_DISTANCE_M.get(name, 0.8) * sight
        start = _present_board(-sight, normal_in_hand, centre, centre_in_hand)
        poses += orbit_poses(
            start, centre, sight, config.views, rng=rng, limits=limits, jitter_m=0.04,
            spread_m=0.2, max_tilt_deg=35.0,
        )  # fmt: skip
        centres.append(centre)
        sights.append(sight)
    if len(cameras) > 1:  # the board between the cameras, seen by all: camera-to-camera views
        centre = np.mean(centres, axis=0)
        towards = -np.sum([s / np.linalg.norm(s) for s in sights], axis=0)
        start = _present_board(towards, normal_in_hand, centre, centre_in_hand)
        poses += orbit_poses(
            start, centre, -towards, max(6, config.views // 2), rng=rng, limits=limits,
            jitter_m=0.04, max_tilt_deg=12.0, max_roll_deg=20.0,
        )  # fmt: skip
    return poses


def _tcp_from_hand_body(T_handbody_x: np.ndarray) -> np.ndarray:
    """A pose given in the hand body's frame, in the TCP frame the robot reports."""
    return make_transform(np.eye(3), [0.0, 0.0, -scene.TCP_OFFSET_M]) @ T_handbody_x


def _present_board(
    towards_camera: np.ndarray, normal_in_hand: np.ndarray, centre: np.ndarray, centre_in_hand
) -> np.ndarray:
    """Hand pose that puts the board centre at ``centre`` facing the camera, hand near down."""
    a = towards_camera / np.linalg.norm(towards_camera)
    down = np.array([0.0, 0.0, -1.0])
    b = down - (down @ a) * a
    b /= np.linalg.norm(b)
    base_axes = np.stack([a, b, np.cross(a, b)], axis=1)
    z_hand = np.array([0.0, 0.0, 1.0])
    hand_axes = np.stack([normal_in_hand, z_hand, np.cross(normal_in_hand, z_hand)], axis=1)
    rotation = base_axes @ hand_axes.T
    return make_transform(rotation, centre - rotation @ centre_in_hand)


def _noisy(T: np.ndarray, config: SimCalibrationConfig, rng: np.random.Generator) -> np.ndarray:
    """The reported hand pose with the configured robot pose noise (benchmarks)."""
    if config.robot_pose_noise_mm == 0.0 and config.robot_pose_noise_deg == 0.0:
        return T
    rotvec = rng.normal(0.0, np.radians(config.robot_pose_noise_deg), 3)
    shift = rng.normal(0.0, config.robot_pose_noise_mm / 1000.0, 3)
    return T @ make_transform(mat_from_rotvec(rotvec), shift)
