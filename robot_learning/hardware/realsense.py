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
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyrealsense2 as rs

from robot_learning.errors import RobotLearningError
from robot_learning.hardware.camera import (
    Camera,
    CameraFrame,
    CameraIntrinsics,
    CameraTimeoutError,
    checked_T_base_camera,
)

log = logging.getLogger(__name__)

# librealsense distortion models whose five coefficients are OpenCV's (k1, k2, p1, p2, k3).
# The inverse model uses the same coefficients for the deprojection direction; D400 color
# sensors report it with (near-)zero coefficients, so it is passed through as well.
_OPENCV_COMPATIBLE_MODELS = {
    rs.distortion.none,
    rs.distortion.brown_conrady,
    rs.distortion.modified_brown_conrady,
    rs.distortion.inverse_brown_conrady,
}


class RealSenseNotFoundError(RobotLearningError, LookupError):
    """The requested RealSense is not connected (the message lists the ones that are)."""


@dataclass(frozen=True)
class RealSenseDeviceInfo:
    serial: str
    name: str
    usb_type: str


def connected_realsense_devices(context: rs.context | None = None) -> list[RealSenseDeviceInfo]:
    """Every RealSense librealsense can see now (serial, product name, USB type)."""
    infos = []
    for dev in (context or rs.context()).query_devices():

        def info(key: rs.camera_info, dev: rs.device = dev) -> str:
            return dev.get_info(key) if dev.supports(key) else "?"

        infos.append(
            RealSenseDeviceInfo(
                serial=info(rs.camera_info.serial_number),
                name=info(rs.camera_info.name),
                usb_type=info(rs.camera_info.usb_type_descriptor),
            )
        )
    return infos


def resolve_serial(requested: str | None, connected: list[str]) -> str:
    """The serial to open: ``requested`` if connected, else the only device, else an error."""
    if requested is not None:
        if requested in connected:
            return requested
        raise RealSenseNotFoundError(
            f"RealSense with serial {requested!r} is not connected; connected serials: "
            f"{sorted(connected) or 'none'}"
        )
    if len(connected) == 1:
        return connected[0]
    if not connected:
        raise RealSenseNotFoundError("no RealSense camera is connected")
    raise RealSenseNotFoundError(
        f"{len(connected)} RealSense cameras are connected ({sorted(connected)}); "
        "pass serial= to pick one"
    )


def intrinsics_from_rs(intr: rs.intrinsics) -> CameraIntrinsics:
    """librealsense intrinsics -> CameraIntrinsics (OpenCV distortion order)."""
    if intr.model not in _OPENCV_COMPATIBLE_MODELS:
        raise ValueError(
            f"RealSense distortion model {intr.model} has no OpenCV (k1, k2, p1, p2, k3) form"
        )
    return CameraIntrinsics(
        width=intr.width,
        height=intr.height,
        fx=intr.fx,
        fy=intr.fy,
        cx=intr.ppx,
        cy=intr.ppy,
        distortion=tuple(float(c) for c in intr.coeffs[:5]),
    )


def intrinsics_to_rs(intr: CameraIntrinsics) -> rs.intrinsics:
    """CameraIntrinsics -> librealsense intrinsics (Brown-Conrady, same coefficient order)."""
    out = rs.intrinsics()
    out.width, out.height = intr.width, intr.height
    out.fx, out.fy, out.ppx, out.ppy = intr.fx, intr.fy, intr.cx, intr.cy
    out.model = rs.distortion.brown_conrady
    out.coeffs = [float(c) for c in intr.distortion[:5]] + [0.0] * (5 - len(intr.distortion))
    return out


def depth_to_mm(raw: np.ndarray, depth_units_m: float) -> np.ndarray:
    """Raw z16 depth in device units -> uint16 millimetres (0 stays 'no depth')."""
    if abs(depth_units_m - 0.001) < 1e-9:
        return raw.astype(np.uint16, copy=True)
    mm = np.rint(raw.astype(np.float64) * (depth_units_m * 1000.0))
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)


class DeviceClockMapper:
    """Maps a device clock (ms, arbitrary origin) onto the station clock (s).

    The transfer delay is never negative, so the smallest ``arrival - device`` seen over a
    sliding window is the best offset estimate (the lower envelope); the window follows slow
    drift between the two crystals. A device clock running backwards (reset) restarts it.
    """

    def __init__(self, *, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._last_device_s: float | None = None

    def map(self, device_ms: float, arrival_s: float) -> float:
        device_s = device_ms / 1000.0
        if self._last_device_s is not None and device_s < self._last_device_s:
            log.warning(
                "device clock went backwards (%.3f -> %.3f s); resyncing",
                self._last_device_s,
                device_s,
            )
            self._samples.clear()
        self._last_device_s = device_s
        offset_s = arrival_s - device_s
        # Monotonic deque: offsets increase from front to back, so the front is the minimum.
        while self._samples and self._samples[-1][1] >= offset_s:
            self._samples.pop()
        self._samples.append((arrival_s, offset_s))
        while self._samples[0][0] < arrival_s - self.window_s:
            self._samples.popleft()
        return device_s + self._samples[0][1]


class FrameSource(Protocol):
    """Where framesets come from. ``start`` returns the active stream profiles."""

    serial: str

    def start(self) -> list[rs.stream_profile]: ...

    def wait(self, timeout_s: float) -> rs.composite_frame | None: ...

    def poll(self) -> rs.composite_frame | None: ...

    def stop(self) -> None: ...


class PipelineSource:
    """A real device: ``rs.pipeline`` pinned to one serial, global timestamps switched on."""

    def __init__(
        self,
        *,
        serial: str,
        width: int,
        height: int,
        fps: int,
        enable_depth: bool,
        context: rs.context | None = None,
    ) -> None:
        self.serial = serial
        self._width, self._height, self._fps = width, height, fps
        self._enable_depth = enable_depth
        self._pipeline = rs.pipeline(context) if context is not None else rs.pipeline()

    def start(self) -> list[rs.stream_profile]:
        cfg = rs.config()
        cfg.enable_device(self.serial)
        cfg.enable_stream(rs.stream.color, self._width, self._height, rs.format.rgb8, self._fps)
        if self._enable_depth:
            cfg.enable_stream(rs.stream.depth, self._width, self._height, rs.format.z16, self._fps)
        try:
            profile = self._pipeline.start(cfg)
        except RuntimeError as exc:
            raise RuntimeError(
                f"RealSense {self.serial}: cannot start {self._width}x{self._height} "
                f"@ {self._fps} fps (depth={self._enable_depth}): {exc}"
            ) from exc
        for sensor in profile.get_device().query_sensors():
            if sensor.supports(rs.option.global_time_enabled):
                sensor.set_option(rs.option.global_time_enabled, 1.0)
        return list(profile.get_streams())

    def wait(self, timeout_s: float) -> rs.composite_frame | None:
        ok, frames = self._pipeline.try_wait_for_frames(max(1, int(timeout_s * 1000)))
        return frames if ok else None

    def poll(self) -> rs.composite_frame | None:
        frames = self._pipeline.poll_for_frames()
        return frames if frames else None

    def stop(self) -> None:
        self._pipeline.stop()


class SensorSource:
    """Sensors opened directly and merged by an ``rs.syncer`` (used for software devices)."""

    def __init__(
        self,
        *,
        serial: str,
        streams: list[tuple[rs.sensor, rs.stream_profile]],
        queue_size: int = 2,
    ) -> None:
        self.serial = serial
        self._streams = streams
        self._queue_size = queue_size
        self._syncer: rs.syncer | None = None

    def start(self) -> list[rs.stream_profile]:
        self._syncer = rs.syncer(self._queue_size)
        for sensor, profile in self._streams:
            sensor.open(profile)
        for sensor, _ in self._streams:
            sensor.start(self._syncer)
        return [profile for _, profile in self._streams]

    def wait(self, timeout_s: float) -> rs.composite_frame | None:
        assert self._syncer is not None, "SensorSource.wait before start"
        ok, frames = self._syncer.try_wait_for_frames(max(1, int(timeout_s * 1000)))
        return frames if ok else None

    def poll(self) -> rs.composite_frame | None:
        assert self._syncer is not None, "SensorSource.poll before start"
        frames = self._syncer.poll_for_frames()
        return frames if frames else None

    def stop(self) -> None:
        for sensor, _ in self._streams:
            sensor.stop()
            sensor.close()
        self._syncer = None


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
