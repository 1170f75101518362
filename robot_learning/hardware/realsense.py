"""Intel RealSense cameras through ``pyrealsense2``: color + depth aligned to color.

Where frames come from is a :class:`FrameSource`, so the same camera code runs on a real
device (:class:`PipelineSource`, an ``rs.pipeline`` pinned to a serial number) and on any
set of librealsense sensors (:class:`SensorSource`), such as a ``software_device`` fed with
numpy frames, which is how the tests drive it (tests/hardware/software_realsense.py): syncer,
``rs.align``, intrinsics and extrinsics are librealsense's own code in both cases.

Timestamps (station clock = host ``time.time()``, see ``robot_learning.hardware``):

- ``global_time`` domain (what ``PipelineSource`` asks for through the sensor option
  ``global_time_enabled``): librealsense maps the camera's hardware clock linearly onto the
  host ``std::chrono::system_clock`` in ms since the epoch, the same base as ``time.time()``;
  it is used as is (ms -> s).
- ``system_time`` domain (no frame metadata, e.g. unpatched kernel): host arrival time in ms
  since the epoch; used as is, but it includes the USB transfer delay (logged once).
- ``hardware_clock`` domain (device ms, arbitrary origin): mapped by
  :class:`DeviceClockMapper` from the frame's ``time_of_arrival`` metadata (host ms) or,
  without it, the host time at dequeue.

``CameraFrame.frame_index`` is the color stream's hardware frame counter, so a gap means the
device or the host dropped frames (counted in ``RealSenseCamera.frames_dropped``).

This module holds :class:`RealSenseCamera`; its parts live beside it and are importable from
here as well: ``realsense_devices`` (discovery, serial choice, intrinsics and depth units),
``realsense_sources`` (the frame sources) and ``device_clock`` (:class:`DeviceClockMapper`).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyrealsense2 as rs

from robot_learning.hardware.camera import (
    Camera,
    CameraFrame,
    CameraIntrinsics,
    CameraTimeoutError,
    checked_T_base_camera,
)
from robot_learning.hardware.device_clock import DeviceClockMapper
from robot_learning.hardware.realsense_devices import (
    RealSenseDeviceInfo,
    RealSenseNotFoundError,
    connected_realsense_devices,
    depth_to_mm,
    intrinsics_from_rs,
    intrinsics_to_rs,
    resolve_serial,
)
from robot_learning.hardware.realsense_sources import FrameSource, PipelineSource, SensorSource

log = logging.getLogger(__name__)

# What this module offered before its parts moved out; importable from here as before.
__all__ = [
    "DeviceClockMapper",
    "FrameSource",
    "PipelineSource",
    "RealSenseCamera",
    "RealSenseDeviceInfo",
    "RealSenseNotFoundError",
    "SensorSource",
    "checked_T_base_camera",
    "connected_realsense_devices",
    "depth_to_mm",
    "intrinsics_from_rs",
    "intrinsics_to_rs",
    "resolve_serial",
]


class RealSenseCamera(Camera):
    """One RealSense: RGB color + depth aligned to color (mm), on the station clock.

    ``source`` replaces the device pipeline (software device, replay); otherwise ``serial``
    picks the device (``None``: the only one connected).
    """

    def __init__(
        self,
        *,
        name: str = "realsense",
        serial: str | None = None,
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        enable_depth: bool = True,
        extrinsics: np.ndarray | None = None,
        source: FrameSource | None = None,
        context: rs.context | None = None,
    ) -> None:
        super().__init__(name)
        self.serial = source.serial if source is not None else serial
        self.width, self.height, self.fps = width, height, fps
        self.enable_depth = enable_depth
        self._extrinsics = checked_T_base_camera(extrinsics, name)
        self._given_source = source
        self._context = context
        self._source: FrameSource | None = None
        self._align: rs.align | None = None
        self._intrinsics: CameraIntrinsics | None = None
        self._clock = DeviceClockMapper()
        self._last_frame_number: int | None = None
        self._warned_domain = False
        self.frames_dropped = 0

    def __repr__(self) -> str:
        return f"RealSenseCamera(name={self.name!r}, serial={self.serial!r})"

    @property
    def is_connected(self) -> bool:
        return self._source is not None

    def connect(self) -> None:
        if self._source is not None:
            return
        source = self._given_source
        if source is None:
            serials = [d.serial for d in connected_realsense_devices(self._context)]
            self.serial = resolve_serial(self.serial, serials)
            source = PipelineSource(
                serial=self.serial,
                width=self.width,
                height=self.height,
                fps=self.fps,
                enable_depth=self.enable_depth,
                context=self._context,
            )
        profiles = source.start()
        try:
            color = next(p for p in profiles if p.stream_type() == rs.stream.color)
        except StopIteration:
            source.stop()
            raise RuntimeError(f"camera {self.name!r} ({self.serial}): no color stream") from None
        self._intrinsics = intrinsics_from_rs(color.as_video_stream_profile().get_intrinsics())
        self._align = rs.align(rs.stream.color)
        self._clock = DeviceClockMapper()
        self._last_frame_number = None
        self.frames_dropped = 0
        self._source = source
        log.info(
            "camera %r: RealSense %s streaming %dx%d",
            self.name,
            self.serial,
            self._intrinsics.width,
            self._intrinsics.height,
        )

    def disconnect(self) -> None:
        if self._source is None:
            return
        source, self._source, self._align = self._source, None, None
        try:
            source.stop()
        except RuntimeError as exc:  # already unplugged
            log.warning("camera %r: stopping RealSense %s: %s", self.name, self.serial, exc)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._intrinsics is None:
            raise RuntimeError(
                f"camera {self.name!r}: RealSense intrinsics come from the device; connect first"
            )
        return self._intrinsics

    @property
    def extrinsics(self) -> np.ndarray | None:
        return self._extrinsics

    def read(self, timeout_s: float = 1.0) -> CameraFrame:
        source = self._connected_source()
        deadline = time.monotonic() + timeout_s
        while (remaining_s := deadline - time.monotonic()) > 0:
            try:
                frames = source.wait(remaining_s)
            except RuntimeError as exc:  # device lost mid-stream
                raise self._timeout(timeout_s, f"device error: {exc}") from exc
            if frames is None:
                break
            frame = self._to_camera_frame(frames)
            if frame is not None:
                return frame
        raise self._timeout(timeout_s, "no frame")

    def read_latest(self, max_age_s: float) -> CameraFrame:
        """Drain what is queued and return the newest; stale or missing -> timeout error."""
        source = self._connected_source()
        latest = None
        while (frames := source.poll()) is not None:
            latest = self._to_camera_frame(frames) or latest
        if latest is None:
            latest = self.read(timeout_s=max_age_s)
        if latest.age_s > max_age_s:
            raise CameraTimeoutError(
                f"camera {self.name!r} (RealSense {self.serial}): latest frame is "
                f"{latest.age_s:.3f} s old (max {max_age_s:.3f} s)"
            )
        return latest

    def _connected_source(self) -> FrameSource:
        if self._source is None:
            raise RuntimeError(f"camera {self.name!r} (RealSense {self.serial}) is not connected")
        return self._source

    def _timeout(self, timeout_s: float, what: str) -> CameraTimeoutError:
        return CameraTimeoutError(
            f"camera {self.name!r} (RealSense {self.serial}): {what} within {timeout_s:.3f} s"
        )

    def _to_camera_frame(self, frames: rs.composite_frame) -> CameraFrame | None:
        """Align and convert a frameset; None when it lacks a stream we need (start-up)."""
        dequeued_s = time.time()
        if not frames.get_color_frame() or (self.enable_depth and not frames.get_depth_frame()):
            return None
        assert self._align is not None
        aligned = self._align.process(frames) if self.enable_depth else frames
        color_frame = aligned.get_color_frame()
        # Copy out: librealsense recycles frame buffers from a small pool.
        color = np.asanyarray(color_frame.get_data())
        if color_frame.get_profile().format() == rs.format.bgr8:
            color = color[..., ::-1]
        color = np.array(color, order="C", copy=True)
        depth = None
        if self.enable_depth:
            depth_frame = aligned.get_depth_frame()
            depth = depth_to_mm(np.asanyarray(depth_frame.get_data()), depth_frame.get_units())
        received_s = dequeued_s
        if color_frame.supports_frame_metadata(rs.frame_metadata_value.time_of_arrival):
            received_s = (
                color_frame.get_frame_metadata(rs.frame_metadata_value.time_of_arrival) / 1000.0
            )
        frame_number = color_frame.get_frame_number()
        self._count_drops(frame_number)
        return CameraFrame(
            color=color,
            timestamp_s=self._station_time_s(color_frame, received_s),
            received_s=received_s,
            frame_index=frame_number,
            depth=depth,
            camera_name=self.name,
        )

    def _station_time_s(self, frame: rs.frame, arrival_s: float) -> float:
        domain = frame.get_frame_timestamp_domain()
        if domain == rs.timestamp_domain.hardware_clock:
            return self._clock.map(frame.get_timestamp(), arrival_s)
        if domain == rs.timestamp_domain.system_time and not self._warned_domain:
            self._warned_domain = True
            log.warning(
                "camera %r: RealSense %s gives host arrival times (no frame metadata); "
                "timestamps include the USB delay",
                self.name,
                self.serial,
            )
        return frame.get_timestamp() / 1000.0

    def _count_drops(self, frame_number: int) -> None:
        last, self._last_frame_number = self._last_frame_number, frame_number
        if last is not None and frame_number > last + 1:
            self.frames_dropped += frame_number - last - 1
            log.debug(
                "camera %r: %d frame(s) dropped before #%d",
                self.name,
                frame_number - last - 1,
                frame_number,
            )
