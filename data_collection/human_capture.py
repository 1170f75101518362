"""Human-video capture: synchronized color (+ depth) from calibrated cameras into
``human_video`` episodes, started and stopped by the operator's keys or buttons.

The operator's device is any ``TeleopDevice`` (keyboard: ``b`` start, Enter stop as success,
Backspace stop as failed, ``x`` discard; SpaceMouse buttons the same): only its events are
used. A step at the record rate takes the newest frame of every camera; the cameras'
capture times must agree within ``max_skew_s``, else the step is skipped and counted
(never silently misaligned). Every episode records the calibration it was taken with
(intrinsics, ``T_base_camera``, and the file's fingerprint), which triangulation needs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from robot_learning.hardware.camera import Camera, CameraIntrinsics, CameraTimeoutError
from robot_learning.hardware.teleop import TeleopDevice, TeleopEvent
from robot_learning.keys import TIMESTAMP, camera_key, camera_timestamp_key, depth_key
from robot_learning.store import Codec, KeySpec, Source, StoreSchema, StoreWriter

log = logging.getLogger(__name__)


def human_video_schema(cameras: Mapping[str, CameraIntrinsics], *, depth: bool,
                       record_hz: float, jpeg_quality: int = 90) -> StoreSchema:
    """The keys of a human-video episode: per camera color (+ depth) and capture time."""
    keys: dict[str, KeySpec] = {
        TIMESTAMP: KeySpec((), "float64", units="s, station clock", description="time of the step"),
    }
    for name, intr in cameras.items():
        shape = (intr.height, intr.width)
        keys[camera_key(name)] = KeySpec((*shape, 3), "uint8", Codec.JPEG, quality=jpeg_quality,
                                         frame=f"{name}_color_optical_frame")
        keys[camera_timestamp_key(name)] = KeySpec((), "float64", units="s, station clock",
                                                   description=f"capture time of {name}")
        if depth:
            keys[depth_key(name)] = KeySpec(shape, "uint16", Codec.DEPTH, units="mm",
                                            frame=f"{name}_color_optical_frame")
    return StoreSchema(keys=keys, stream_rates_hz={"step": record_hz})


@dataclass(frozen=True)
class CaptureConfig:
    task: str = "human"
    operator: str = ""
    record_hz: float = 15.0
    depth: bool = False
    max_skew_s: float = 0.05  # capture times of one step's frames agree within this
    max_age_s: float = 0.5  # a camera whose newest frame is older is reported
    episodes: int | None = None  # stop after this many committed; None: until interrupted
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.record_hz <= 0:
            raise ValueError(f"record_hz must be > 0, got {self.record_hz}")
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")


@dataclass(frozen=True)
class EpisodeSummary:
    index: int
    frames: int  # steps recorded (each holds one frame per camera)
    skipped: int  # steps dropped because the cameras' frames were not synchronized
    success: bool
    duration_s: float


class HumanCapture:
    """Records episodes from ``cameras`` (connected) into ``writer`` on ``device``'s events."""

    def __init__(self, *, cameras: Mapping[str, Camera], writer: StoreWriter,
                 device: TeleopDevice, calibration: Mapping[str, Any], config: CaptureConfig,
                 report: Callable[[str], None] = print) -> None:
        if len(cameras) < 1:
            raise ValueError("human capture needs at least one camera (two to triangulate)")
        self.cameras = dict(cameras)
        self.writer = writer
        self.device = device
        self.calibration = dict(calibration)
        self.config = config
        self.report = report
        self.summaries: list[EpisodeSummary] = []

    def run(self, *, stop: Callable[[], bool] = lambda: False) -> list[EpisodeSummary]:
        """Wait for START, record until stop/discard, repeat; returns the committed episodes.
        An open episode is discarded when the loop ends (interrupt, error, ``stop``)."""
        period = 1.0 / self.config.record_hz
        episode: dict[str, Any] | None = None
        self.report(f"ready: press start ({', '.join(self.cameras)})")
        try:
            next_step = time.monotonic()
            while not stop():
                if self.config.episodes and len(self.summaries) >= self.config.episodes:
                    break
                events = self.device.read().events
                if episode is None:
                    if TeleopEvent.START in events:
                        episode = self._begin()
                        next_step = time.monotonic()
                    else:
                        time.sleep(0.01)
                    continue
                if TeleopEvent.DISCARD in events:
                    self.writer.discard()
                    self.report(f"episode discarded ({episode['frames']} frames)")
                    episode = None
                    continue
                if events & {TeleopEvent.SUCCESS, TeleopEvent.FAIL}:
                    self._commit(episode, success=TeleopEvent.SUCCESS in events)
                    episode = None
                    continue
                now = time.monotonic()
                if now < next_step:
                    time.sleep(min(next_step - now, 0.01))
                    continue
                next_step += period
                self._step(episode)
        finally:
            if episode is not None and self.writer.in_episode:
                self.writer.discard()
                self.report(f"open episode discarded ({episode['frames']} frames)")
        return self.summaries

    def _begin(self) -> dict[str, Any]:
        index = self.writer.begin_episode(
            source=Source.HUMAN_VIDEO, task=self.config.task, operator=self.config.operator,
            calibration=self.calibration,
            notes={"record_hz": self.config.record_hz, "depth": self.config.depth,
                   "cameras": list(self.cameras)})
        self.report(f"episode {index}: recording")
        return {"index": index, "frames": 0, "skipped": 0, "start": time.monotonic()}

    def _step(self, episode: dict[str, Any]) -> None:
        frames = {}
        for name, camera in self.cameras.items():
            try:
                frames[name] = camera.read_latest(self.config.max_age_s)
            except CameraTimeoutError as exc:
                log.warning("step skipped: %s", exc)
                episode["skipped"] += 1
                return
        stamps = [f.timestamp_s for f in frames.values()]
        if max(stamps) - min(stamps) > self.config.max_skew_s:
            episode["skipped"] += 1
            return
        row: dict[str, Any] = {TIMESTAMP: max(stamps)}
        for name, frame in frames.items():
            row[camera_key(name)] = frame.color
            row[camera_timestamp_key(name)] = frame.timestamp_s
            if self.config.depth:
                if frame.depth is None:
                    raise ValueError(f"camera {name!r} delivered no depth frame (--depth)")
                row[depth_key(name)] = frame.depth
        self.writer.append(row)
        episode["frames"] += 1

    def _commit(self, episode: dict[str, Any], *, success: bool) -> None:
        duration = time.monotonic() - episode["start"]
        if episode["frames"] == 0:
            self.writer.discard()
            self.report(f"episode {episode['index']}: no synchronized frame; discarded")
            return
        index = self.writer.commit(success=success, notes={"skipped_steps": episode["skipped"]})
        summary = EpisodeSummary(index, episode["frames"], episode["skipped"], success, duration)
        self.summaries.append(summary)
        self.report(f"episode {index}: {summary.frames} frames per camera, "
                    f"{summary.skipped} skipped, {duration:.1f} s, "
                    f"{'success' if success else 'failed'}")
