"""An episode's cameras as its metadata records them: intrinsics and pose, for projection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_learning.errors import InputError
from robot_learning.geometry import invert_transform
from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.store import EpisodeInfo


class TrackInputError(InputError):
    """An episode that cannot be labelled as asked; the message names episode and camera."""


@dataclass(frozen=True)
class EpisodeCamera:
    """One camera of one episode. ``T_base_camera`` (T, 4, 4): its pose at every step (a
    fixed camera's repeats, a wrist camera's follows the hand)."""

    name: str
    intrinsics: CameraIntrinsics
    T_base_camera: np.ndarray

    @classmethod
    def from_episode(
        cls,
        info: EpisodeInfo,
        name: str,
        ee_poses: np.ndarray | None = None,
        steps: int | None = None,
    ) -> EpisodeCamera:
        """``ee_poses`` (T, 7) are needed only for a camera on the hand; ``steps`` gives T
        for fixed cameras when there are no poses (human videos)."""
        entry: dict[str, Any] | None = info.calibration.get(name)
        where = f"episode {info.index}, camera {name!r}"
        if entry is None:
            raise TrackInputError(
                f"{where}: no calibration recorded (episode has "
                f"{sorted(info.calibration) or 'none'}); record with a "
                "calibrated camera or add its calibration"
            )
        if entry.get("T_base_camera") is None and entry.get("T_hand_camera") is None:
            raise TrackInputError(
                f"{where}: recorded uncalibrated (no pose); calibrate the "
                "camera (rl calibrate) and record again"
            )
        try:
            intrinsics = CameraIntrinsics(
                width=int(entry["width"]),
                height=int(entry["height"]),
                fx=float(entry["fx"]),
                fy=float(entry["fy"]),
                cx=float(entry["cx"]),
                cy=float(entry["cy"]),
                distortion=tuple(entry.get("distortion") or (0.0,) * 5),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TrackInputError(f"{where}: intrinsics unreadable ({exc})") from exc
        if entry.get("T_hand_camera") is not None and ee_poses is None:
            raise TrackInputError(
                f"{where}: a camera on the hand needs the episode's end-effector poses"
            )
        if ee_poses is None:
            ee_poses = np.zeros((steps or 1, 7))
            ee_poses[:, 6] = 1.0
        poses = info.camera_poses(name, ee_poses)
        return cls(name=name, intrinsics=intrinsics, T_base_camera=poses)

    def project(self, points_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, K, 3) base-frame points -> (T, K, 2) pixels and (T, K) depth along the optical
        axis (m; <= 0 behind the camera)."""
        points = np.asarray(points_base, dtype=np.float64)
        T_camera_base = np.stack([invert_transform(t) for t in self.T_base_camera])
        if len(T_camera_base) == 1 and len(points) > 1:
            T_camera_base = np.repeat(T_camera_base, len(points), axis=0)
        in_camera = np.einsum("tij,tkj->tki", T_camera_base[:, :3, :3], points)
        in_camera += T_camera_base[:, None, :3, 3]
        pixels = self.intrinsics.project(in_camera.reshape(-1, 3)).reshape(*points.shape[:-1], 2)
        return pixels, in_camera[..., 2]

    def inside(self, pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Whether each pixel lies in the image, in front of the camera."""
        w, h = self.intrinsics.width, self.intrinsics.height
        return (
            (depth > 0)
            & (pixels[..., 0] >= 0)
            & (pixels[..., 0] <= w - 1)
            & (pixels[..., 1] >= 0)
            & (pixels[..., 1] <= h - 1)
        )
