"""The Camera interface: timestamped color (+ optional aligned depth) with intrinsics.

Color is RGB uint8 (H, W, 3); depth is uint16 (H, W) in millimetres, aligned to the color
image. ``extrinsics`` is T_base_camera (4x4, metres): the camera's optical frame (x right,
y down, z forward, OpenCV/ROS optical convention) expressed in the robot base frame, or
``None`` when the camera is not calibrated.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass, field

import numpy as np

from robot_learning.errors import RobotLearningError
from robot_learning.hardware.device import Device


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels; ``distortion`` as OpenCV's (k1, k2, p1, p2, k3)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """Project (N, 3) points in the optical frame to (N, 2) pixels, lens distortion
        included (OpenCV's model, as ``cv2.projectPoints``)."""
        p = np.asarray(points_camera, dtype=np.float64).reshape(-1, 3)
        x, y = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
        k1, k2, p1, p2, k3 = (tuple(self.distortion) + (0.0,) * 5)[:5]
        if any((k1, k2, p1, p2, k3)):
            r2 = x * x + y * y
            radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
            x, y = (
                x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
                y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
            )
        return np.stack([self.fx * x + self.cx, self.fy * y + self.cy], axis=1)


@dataclass(frozen=True)
class CameraFrame:
    """One capture. ``timestamp_s`` is capture time, ``received_s`` when the host got it."""

    color: np.ndarray  # (H, W, 3) uint8 RGB
    timestamp_s: float
    received_s: float
    frame_index: int
    depth: np.ndarray | None = None  # (H, W) uint16 mm, aligned to color
    camera_name: str = field(default="camera")

    @property
    def age_s(self) -> float:
        return time.time() - self.timestamp_s


class CameraTimeoutError(RobotLearningError, TimeoutError):
    """A camera stopped delivering frames."""


def checked_T_base_camera(extrinsics: np.ndarray | None, camera_name: str) -> np.ndarray | None:
    """Validate a 4x4 rigid transform (T_base_camera) so a bad calibration fails at startup.

    Returns a read-only float64 copy, or None for an uncalibrated camera.
    """
    if extrinsics is None:
        return None
    T = np.array(extrinsics, dtype=np.float64)
    R = T[:3, :3] if T.shape == (4, 4) else None
    if (
        R is None
        or not np.all(np.isfinite(T))
        or not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0])
        or not np.allclose(R @ R.T, np.eye(3), atol=1e-5)
        or np.linalg.det(R) < 0
    ):
        raise ValueError(
            f"camera {camera_name!r}: extrinsics must be a 4x4 rigid transform T_base_camera, "
            f"got {np.array2string(np.asarray(extrinsics), precision=4)}"
        )
    T.setflags(write=False)
    return T


class Camera(Device):
    """A color(+depth) camera. Context manager; connect/disconnect are idempotent."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    @abstractmethod
    def intrinsics(self) -> CameraIntrinsics: ...

    @property
    def extrinsics(self) -> np.ndarray | None:
        """T_base_camera (4x4) or None when uncalibrated."""
        return None

    @abstractmethod
    def read(self, timeout_s: float = 1.0) -> CameraFrame:
        """Block until the next new frame; raise CameraTimeoutError after ``timeout_s``."""

    def read_latest(self, max_age_s: float) -> CameraFrame:
        """The freshest frame; raise CameraTimeoutError when it is older than ``max_age_s``."""
        frame = self.read(timeout_s=max_age_s)
        if frame.age_s > max_age_s:
            raise CameraTimeoutError(
                f"camera {self.name!r}: latest frame is {frame.age_s:.3f} s old "
                f"(max {max_age_s:.3f} s)"
            )
        return frame
