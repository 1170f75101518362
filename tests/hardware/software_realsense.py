"""A RealSense test double: librealsense's own ``software_device`` fed with numpy frames.

No RealSense is attached here, so tests inject frames into a software device; everything
downstream of its sensors (syncer, ``rs.align``, intrinsics, extrinsics, timestamp domains)
is librealsense's real code, read through the camera's :class:`SensorSource` as a device's
frames would be.
"""

from __future__ import annotations

import numpy as np
import pyrealsense2 as rs

from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.hardware.realsense import SensorSource, intrinsics_to_rs


class SoftwareRealSense:
    """A librealsense ``software_device`` (color + depth sensors) fed with numpy frames.

    Everything downstream of the sensors is librealsense's own code: the syncer pairs depth
    with color, ``rs.align`` uses the intrinsics and ``T_color_depth`` registered here.
    """

    def __init__(
        self,
        *,
        serial: str = "000000000000",
        color_intrinsics: CameraIntrinsics,
        depth_intrinsics: CameraIntrinsics,
        T_color_depth: np.ndarray | None = None,
        depth_units_m: float = 0.001,
        fps: int = 30,
    ) -> None:
        self.serial = serial
        self.depth_units_m = depth_units_m
        self._device = rs.software_device()
        self._device.register_info(rs.camera_info.serial_number, serial)
        self._device.register_info(rs.camera_info.name, "Intel RealSense (software device)")
        self._depth_sensor = self._device.add_sensor("Stereo Module")
        self._color_sensor = self._device.add_sensor("RGB Camera")
        self._depth_profile = self._add_stream(
            self._depth_sensor, rs.stream.depth, rs.format.z16, 2, depth_intrinsics, fps, uid=0
        )
        self._color_profile = self._add_stream(
            self._color_sensor, rs.stream.color, rs.format.rgb8, 3, color_intrinsics, fps, uid=1
        )
        self._depth_sensor.add_read_only_option(rs.option.depth_units, depth_units_m)
        T = np.eye(4) if T_color_depth is None else np.asarray(T_color_depth, dtype=np.float64)
        extr = rs.extrinsics()
        extr.rotation = [float(v) for v in T[:3, :3].flatten(order="F")]  # column-major
        extr.translation = [float(v) for v in T[:3, 3]]
        self._depth_profile.register_extrinsics_to(self._color_profile, extr)
        self._device.create_matcher(rs.matchers.dlr_c)

    @staticmethod
    def _add_stream(
        sensor: rs.software_sensor,
        stream: rs.stream,
        fmt: rs.format,
        bpp: int,
        intr: CameraIntrinsics,
        fps: int,
        uid: int,
    ) -> rs.video_stream_profile:
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid = stream, 0, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = intr.width, intr.height, fps, bpp, fmt
        vs.intrinsics = intrinsics_to_rs(intr)
        return sensor.add_video_stream(vs).as_video_stream_profile()

    def source(self, *, with_depth: bool = True, queue_size: int = 2) -> SensorSource:
        """A FrameSource over this device (color only when ``with_depth`` is False).

        librealsense's depth/color matcher pairs frames reliably in the ``global_time`` and
        ``system_time`` domains; with ``hardware_clock`` timestamps from a software device
        it stops pairing after the first set, so drive that domain color-only.
        """
        streams = [(self._color_sensor, self._color_profile)]
        if with_depth:
            streams.insert(0, (self._depth_sensor, self._depth_profile))
        return SensorSource(serial=self.serial, streams=streams, queue_size=queue_size)

    def inject(
        self,
        *,
        color: np.ndarray,
        depth: np.ndarray | None,
        timestamp_ms: float,
        frame_number: int,
        domain: rs.timestamp_domain = rs.timestamp_domain.global_time,
    ) -> None:
        """Push one capture; ``depth`` in device units (uint16), ``color`` RGB uint8."""
        if depth is not None:
            self._push(
                self._depth_sensor,
                self._depth_profile,
                depth,
                2,
                timestamp_ms,
                frame_number,
                domain,
            )
        self._push(
            self._color_sensor, self._color_profile, color, 3, timestamp_ms, frame_number, domain
        )

    def _push(
        self,
        sensor: rs.software_sensor,
        profile: rs.video_stream_profile,
        pixels: np.ndarray,
        bpp: int,
        timestamp_ms: float,
        frame_number: int,
        domain: rs.timestamp_domain,
    ) -> None:
        expected = (profile.height(), profile.width()) + ((3,) if bpp == 3 else ())
        if pixels.shape != expected:
            raise ValueError(f"{profile.stream_type()} frame shape {pixels.shape} != {expected}")
        frame = rs.software_video_frame()
        frame.pixels = np.ascontiguousarray(pixels, dtype=np.uint8 if bpp == 3 else np.uint16)
        frame.bpp, frame.stride = bpp, profile.width() * bpp
        frame.timestamp, frame.domain, frame.frame_number = timestamp_ms, domain, frame_number
        frame.profile = profile
        if bpp == 2:
            frame.depth_units = self.depth_units_m
        sensor.on_video_frame(frame)
