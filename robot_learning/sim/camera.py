"""Offscreen MuJoCo cameras: RGB (+ depth in mm), intrinsics and T_base_camera.

MuJoCo cameras look along their -z with y up; the Camera interface (and OpenCV/ROS) uses the
optical frame: z forward, y down, x right. ``extrinsics`` converts. Intrinsics follow from
the vertical field of view with square pixels and the principal point at the image centre,
in OpenCV's convention that pixel (0, 0) is the *centre* of the top-left pixel, hence
``cx = (W - 1) / 2``.

MuJoCo renders an ideal pinhole image; a ``SimLens`` adds what a real camera adds on top, a
known lens distortion (OpenCV's model, by remapping the render) and sensor noise, so that
calibration can be measured against exact ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import mujoco
import numpy as np

from robot_learning.hardware.camera import Camera, CameraFrame, CameraIntrinsics

MAX_DEPTH_MM = 65535
MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class SimLens:
    """Lens distortion (OpenCV's k1, k2, p1, p2, k3) and Gaussian sensor noise (std in
    intensity levels) applied to a camera's ideal pinhole render."""

    distortion: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    noise_std: float = 0.0

    @property
    def is_ideal(self) -> bool:
        return not any(self.distortion) and self.noise_std == 0.0


# A RealSense-like lens: a few pixels of distortion at the image corners of a 640x480 image.
REALISTIC_LENS = SimLens(distortion=(0.12, -0.08, 0.0008, -0.0005, 0.0), noise_std=2.0)


class LensDistortion:
    """Remaps ideal pinhole renders to what a lens with ``distortion`` shows at the same K.

    Each output pixel samples the pinhole image at its undistorted position, so a scene point
    lands exactly where ``cv2.projectPoints(K, distortion)`` puts it.
    """

    def __init__(self, intrinsics: CameraIntrinsics, distortion: tuple[float, ...]) -> None:
        import cv2

        height, width = intrinsics.height, intrinsics.width
        u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        distorted = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)
        K, dist = intrinsics.matrix, np.asarray(distortion, dtype=np.float64)
        ideal = cv2.undistortPointsIter(distorted, K, dist, None, K, criteria).reshape(
            height, width, 2
        )
        self._map_x = ideal[..., 0].astype(np.float32)
        self._map_y = ideal[..., 1].astype(np.float32)

    def apply(self, image: np.ndarray, *, nearest: bool = False) -> np.ndarray:
        """The image through the lens (``nearest`` for depth, which must not be blended)."""
        import cv2

        interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        return cv2.remap(
            image, self._map_x, self._map_y, interpolation, borderMode=cv2.BORDER_REPLICATE
        )


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

    def __init__(
        self,
        *,
        name: str,
        renderer: SceneRenderer,
        with_depth: bool = False,
        lens: SimLens | None = None,
        noise_seed: int | tuple[int, ...] = 0,
    ) -> None:
        super().__init__(name)
        self._renderer = renderer
        self.with_depth = with_depth
        self.lens = lens or SimLens()
        self._distortion = (
            LensDistortion(renderer.intrinsics(name), self.lens.distortion)
            if any(self.lens.distortion)
            else None
        )
        self._noise_rng = np.random.default_rng(noise_seed)
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
        """The true intrinsics, lens distortion included."""
        return replace(self._renderer.intrinsics(self.name), distortion=tuple(self.lens.distortion))

    @property
    def extrinsics(self) -> np.ndarray:
        return self._renderer.extrinsics(self.name)

    def render_rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB of the current state, through the lens."""
        image = self._renderer.rgb(self.name)
        if self._distortion is not None:
            image = self._distortion.apply(image)
        if self.lens.noise_std > 0.0:
            noise = self._noise_rng.normal(0.0, self.lens.noise_std, image.shape)
            image = np.clip(image + noise, 0.0, 255.0).round().astype(np.uint8)
        return image

    def read(self, timeout_s: float = 1.0) -> CameraFrame:
        now_s = float(self._renderer.data.time)
        depth = self._renderer.depth_mm(self.name) if self.with_depth else None
        if depth is not None and self._distortion is not None:
            depth = self._distortion.apply(depth, nearest=True)
        frame = CameraFrame(
            color=self.render_rgb(),
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
