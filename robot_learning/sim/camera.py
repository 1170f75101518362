"""Offscreen MuJoCo cameras: RGB (+ depth in mm), pinhole intrinsics and T_base_camera.

MuJoCo cameras look along their -z with y up; the Camera interface (and OpenCV/ROS) uses the
optical frame: z forward, y down, x right. ``extrinsics`` converts. Intrinsics follow from
the vertical field of view with square pixels and the principal point at the image centre,
in OpenCV's convention that pixel (0, 0) is the *centre* of the top-left pixel, hence
``cx = (W - 1) / 2``.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from robot_learning.hardware.camera import Camera, CameraFrame, CameraIntrinsics

MAX_DEPTH_MM = 65535
MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


class SceneRenderer:
    """One offscreen renderer for a model at one image size (shadows and reflections off)."""

    def __init__(self, *, model: mujoco.MjModel, data: mujoco.MjData, image_size: tuple[int, int]):
        height, width = image_size
        if height > model.vis.global_.offheight or width > model.vis.global_.offwidth:
            raise ValueError(
                f"image_size {image_size} exceeds the model's offscreen buffer "
                f"({model.vis.global_.offheight}, {model.vis.global_.offwidth})"
            )
        self.model, self.data, self.image_size = model, data, (height, width)
        self._renderer = mujoco.Renderer(model, height, width)
        flags = self._renderer.scene.flags
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
            flags[flag] = False
        self._depth_mode = False

    def close(self) -> None:
        self._renderer.close()

    def rgb(self, camera_name: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the current physics state."""
        self._set_depth_mode(False)
        self._renderer.update_scene(self.data, camera_name)
        return self._renderer.render()

    def depth_mm(self, camera_name: str) -> np.ndarray:
        """(H, W) uint16 depth along the optical axis in millimetres (0 = nothing there)."""
        self._set_depth_mode(True)
        self._renderer.update_scene(self.data, camera_name)
        depth_m = self._renderer.render()
        depth_mm = np.round(depth_m * 1000.0)
        far_mm = self.model.vis.map.zfar * self.model.stat.extent * 1000.0
        depth_mm[(depth_mm >= min(far_mm * 0.999, MAX_DEPTH_MM)) | ~np.isfinite(depth_mm)] = 0
        return depth_mm.astype(np.uint16)

    def _set_depth_mode(self, enabled: bool) -> None:
        if enabled != self._depth_mode:
            if enabled:
                self._renderer.enable_depth_rendering()
            else:
                self._renderer.disable_depth_rendering()
            self._depth_mode = enabled

    def intrinsics(self, camera_name: str) -> CameraIntrinsics:
        height, width = self.image_size
        fovy_rad = math.radians(float(self.model.camera(camera_name).fovy[0]))
        focal_px = 0.5 * height / math.tan(0.5 * fovy_rad)
        return CameraIntrinsics(
            width=width,
            height=height,
            fx=focal_px,
            fy=focal_px,
            cx=(width - 1) / 2.0,
            cy=(height - 1) / 2.0,
        )

    def extrinsics(self, camera_name: str) -> np.ndarray:
        """T_base_camera (4x4) of the optical frame; the base frame is the world frame here."""
        camera = self.data.camera(camera_name)
        transform = np.eye(4)
        transform[:3, :3] = camera.xmat.reshape(3, 3) @ MUJOCO_TO_OPTICAL
        transform[:3, 3] = camera.xpos
        return transform


class SimCamera(Camera):
    """A Camera over a workcell camera. Lockstep: ``read`` renders the current sim state.

    Timestamps are simulated seconds (the simulator's station clock), so ``read_latest``
    never reports a frame as stale: a rendered frame is always of the current instant.
    """

    def __init__(self, *, name: str, renderer: SceneRenderer, with_depth: bool = False) -> None:
        super().__init__(name)
        self._renderer = renderer
        self.with_depth = with_depth
        self._connected = False
        self._frame_index = 0

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return self._renderer.intrinsics(self.name)

    @property
    def extrinsics(self) -> np.ndarray:
        return self._renderer.extrinsics(self.name)

    def read(self, timeout_s: float = 1.0) -> CameraFrame:
        now_s = float(self._renderer.data.time)
        depth = self._renderer.depth_mm(self.name) if self.with_depth else None
        frame = CameraFrame(
            color=self._renderer.rgb(self.name),
            timestamp_s=now_s,
            received_s=now_s,
            frame_index=self._frame_index,
            depth=depth,
            camera_name=self.name,
        )
        self._frame_index += 1
        return frame

    def read_latest(self, max_age_s: float) -> CameraFrame:
        return self.read()
