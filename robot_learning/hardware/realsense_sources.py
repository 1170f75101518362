"""Where a RealSense camera's framesets come from: a device pipeline or a set of sensors.

:class:`PipelineSource` is a real device (``rs.pipeline`` pinned to a serial, global
timestamps on); :class:`SensorSource` merges sensors opened directly with an ``rs.syncer``,
such as a ``software_device`` fed with numpy frames (how the tests drive the camera).
"""

from __future__ import annotations

from typing import Protocol

import pyrealsense2 as rs


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
