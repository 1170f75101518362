"""Calibration poses: diverse views of the board, safe inside the workspace, and the robot
visiting them while images are captured (or a person holding the board: manual capture).

Poses orbit a pivot (the board's centre) from a start pose where the camera sees the board:
each tilts the hand about a different horizontal axis (golden-angle spread, so hand-eye sees
many rotation axes) and rolls it about the viewing axis, with a little translation jitter.
A pose is kept only if its TCP lies inside the workspace box and the hand stays within
``max_hand_tilt_deg`` of pointing down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from robot_learning.geometry import (
    make_transform,
    mat_from_axis_angle,
    pose_from_transform,
    transform_error,
    transform_from_pose,
)
from robot_learning.hardware.robot import CartesianTarget, Robot, RobotState

logger = logging.getLogger(__name__)

GOLDEN_ANGLE_RAD = np.pi * (3.0 - np.sqrt(5.0))


@dataclass(frozen=True)
class PoseLimits:
    """Where calibration may move the hand (base frame)."""

    workspace_min_m: tuple[float, float, float] = (0.25, -0.5, 0.15)
    workspace_max_m: tuple[float, float, float] = (0.8, 0.5, 0.7)
    max_hand_tilt_deg: float = 65.0  # hand z against straight down

    def allows(self, T_base_hand: np.ndarray) -> bool:
        position = T_base_hand[:3, 3]
        inside = np.all(position >= self.workspace_min_m) and np.all(
            position <= self.workspace_max_m
        )
        down = np.array([0.0, 0.0, -1.0])
        tilt_deg = np.degrees(np.arccos(np.clip(T_base_hand[:3, 2] @ down, -1.0, 1.0)))
        return bool(inside and tilt_deg <= self.max_hand_tilt_deg)


def orbit_poses(
    start: np.ndarray,
    pivot: np.ndarray,
    view_axis: np.ndarray,
    count: int,
    *,
    rng: np.random.Generator,
    max_tilt_deg: float = 30.0,
    max_roll_deg: float = 35.0,
    jitter_m: float = 0.03,
    spread_m: float = 0.0,
    limits: PoseLimits | None = None,
) -> list[np.ndarray]:
    """``count`` hand poses (T_base_hand) around ``pivot`` (base frame), starting from ``start``.

    ``view_axis`` is the camera's line of sight to the board (base frame); rolls turn about
    it. ``spread_m`` shifts poses across the line of sight (a disc of that radius), so the
    board visits the whole image, which the distortion estimate needs. Raises ValueError
    when the limits leave fewer than ``count`` poses.
    """
    limits = limits or PoseLimits()
    view_axis = np.asarray(view_axis, dtype=np.float64) / np.linalg.norm(view_axis)
    # Two axes perpendicular to the line of sight: the tilt axes are spread over their plane.
    helper = np.array([0.0, 0.0, 1.0]) if abs(view_axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(view_axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(view_axis, u)
    poses: list[np.ndarray] = []
    attempts = 0
    while len(poses) < count:
        attempts += 1
        if attempts > 20 * count:
            raise ValueError(
                f"only {len(poses)} of {count} calibration poses fit the workspace "
                f"{limits.workspace_min_m}..{limits.workspace_max_m}; move the board or the "
                "start pose towards the middle of the workspace, or lower max_tilt_deg"
            )
        k = attempts - 1
        fraction = np.sqrt((k % count + 0.5) / count)
        tilt_axis = np.cos(k * GOLDEN_ANGLE_RAD) * u + np.sin(k * GOLDEN_ANGLE_RAD) * v
        tilt = mat_from_axis_angle(tilt_axis, np.radians(max_tilt_deg) * fraction)
        roll = mat_from_axis_angle(view_axis, np.radians(rng.uniform(-max_roll_deg, max_roll_deg)))
        about_pivot = (
            make_transform(np.eye(3), pivot)
            @ make_transform(tilt @ roll, np.zeros(3))
            @ make_transform(np.eye(3), -np.asarray(pivot))
        )
        pose = about_pivot @ start
        angle, radius = rng.uniform(0.0, 2 * np.pi), spread_m * np.sqrt(rng.uniform())
        pose[:3, 3] += radius * (np.cos(angle) * u + np.sin(angle) * v)
        pose[:3, 3] += rng.uniform(-jitter_m, jitter_m, 3)
        if limits.allows(pose):
            poses.append(pose)
    return poses


class PoseVisitor:
    """Moves a Robot to a hand pose and waits until it has settled there.

    ``wait`` lets time pass: ``time.sleep`` of one period for a real arm (the default), or one
    lockstep step for the simulated one (``SimRobot.advance``).
    """

    def __init__(
        self,
        robot: Robot,
        *,
        wait: Callable[[], None] | None = None,
        period_s: float = 0.01,
        timeout_s: float = 8.0,
        tolerance_m: float = 0.002,
        tolerance_deg: float = 0.5,
        settle_steps: int = 10,
    ) -> None:
        self.robot = robot
        self._wait = wait or (lambda: time.sleep(period_s))
        self._max_steps = int(timeout_s / period_s)
        self._tolerance = (tolerance_m, np.radians(tolerance_deg))
        self._settle_steps = settle_steps

    def move_to(self, T_base_hand: np.ndarray) -> RobotState | None:
        """The settled state at ``T_base_hand``, or None when the arm cannot reach it."""
        position, quaternion = pose_from_transform(T_base_hand)
        target = CartesianTarget(position, quaternion)
        settled = 0
        for _ in range(self._max_steps):
            self.robot.send_cartesian_target(target)
            self._wait()
            state = self.robot.read_state()
            error_m, error_rad = transform_error(state_transform(state), T_base_hand)
            still = float(np.max(np.abs(state.joint_velocities))) < 1e-3
            if error_m < self._tolerance[0] and error_rad < self._tolerance[1] and still:
                settled += 1
                if settled >= self._settle_steps:
                    return state
            else:
                settled = 0
        logger.info(
            "calibration pose not reached (%.1f mm, %.2f deg off); skipped",
            1000 * error_m,
            np.degrees(error_rad),
        )
        return None


def state_transform(state: RobotState) -> np.ndarray:
    """T_base_hand of a robot state."""
    return transform_from_pose(state.ee_position, state.ee_quaternion)


def manual_capture(
    frames: Iterator[np.ndarray],
    accept: Callable[[np.ndarray], bool],
    count: int,
    *,
    min_interval_s: float = 1.0,
    on_progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Hand-held board: keep ``count`` images that ``accept`` (e.g. board found and the view
    differs from the kept ones), at most one per ``min_interval_s``, from a live stream."""
    kept: list[np.ndarray] = []
    last = -np.inf
    for image in frames:
        now = time.monotonic()
        if now - last >= min_interval_s and accept(image):
            kept.append(image)
            last = now
            if on_progress is not None:
                on_progress(len(kept))
            if len(kept) >= count:
                break
    return kept
