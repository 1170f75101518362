"""Human-video capture: synchronized color (+ depth) from calibrated cameras into
``human_video`` episodes, started and stopped by the operator's keys or buttons.

Two front ends share one episode writer (``HumanEpisodes``: what a step holds, when frames
count as synchronized, what an episode records about itself) and one calibration check
(``capture_calibration``): ``rl human collect`` (``HumanCapture``, cameras read in this
process) and ``ros_nodes.human_capture_node`` (frames from camera topics, aligned by stamp).

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
from pathlib import Path
from typing import Any

from data_collection.recorder import (
    camera_calibration,
    camera_key_specs,
    load_recording_calibration,
    recorded_calibration,
)
from robot_learning.hardware.camera import (
    Camera,
    CameraFrame,
    CameraIntrinsics,
    CameraTimeoutError,
)
from robot_learning.hardware.teleop import TeleopDevice, TeleopEvent
from robot_learning.keys import TIMESTAMP, camera_key, camera_timestamp_key, depth_key
from robot_learning.store import KeySpec, Source, StoreSchema, StoreWriter

log = logging.getLogger(__name__)


def human_video_schema(
    cameras: Mapping[str, CameraIntrinsics],
    *,
    depth: bool,
    record_hz: float,
    jpeg_quality: int = 90,
) -> StoreSchema:
    """The keys of a human-video episode: per camera color (+ depth) and capture time."""
    keys: dict[str, KeySpec] = {
        TIMESTAMP: KeySpec((), "float64", units="s, station clock", description="time of the step"),
    }
    keys.update(camera_key_specs(cameras, depth=depth, jpeg_quality=jpeg_quality))
    return StoreSchema(keys=keys, stream_rates_hz={"step": record_hz})


def capture_calibration(
    intrinsics: Mapping[str, CameraIntrinsics],
    *,
    serials: Mapping[str, str] | None = None,
    path: str | Path | None = None,
    workcell: str = "lab",
    uncalibrated: bool = False,
) -> dict[str, Any]:
    """What each human-video episode records about the calibration (file ``path``, default
    ``$RL_CALIBRATION_DIR/<workcell>.yaml``); refuses doubtful calibrations (a camera missing
    or with another serial, a failed check, a stale file, a camera on the robot's hand)."""
    if uncalibrated:
        return camera_calibration(intrinsics, {}, source={"kind": "uncalibrated"})
    try:
        cal, path = load_recording_calibration(
            intrinsics, serials=serials, path=path, workcell=workcell, fixed_only=True
        )
    except ValueError as exc:
        raise ValueError(
            f"{exc} (or record uncalibrated: `rl human collect --uncalibrated`, "
            "human_capture_node uncalibrated:=true)"
        ) from None
    return recorded_calibration(cal, path, intrinsics)


@dataclass(frozen=True)
class CaptureConfig:
    task: str = "human"
    operator: str = ""
    record_hz: float = 15.0
    depth: bool = False
    max_skew_s: float = 0.05  # capture times of one step's frames agree within this
    pair_within_s: float = 0.02  # a camera further behind the newest frame is waited for
    max_age_s: float = 0.5  # a camera whose newest frame is older is reported
    episodes: int | None = None  # stop after this many committed; None: until interrupted
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.record_hz <= 0:
            raise ValueError(f"record_hz must be > 0, got {self.record_hz}")
        if self.max_skew_s < 0 or self.pair_within_s < 0:
            raise ValueError(
                f"max_skew_s={self.max_skew_s} and pair_within_s={self.pair_within_s} must be >= 0"
            )
        if self.episodes is not None and self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")


@dataclass(frozen=True)
class EpisodeSummary:
    index: int
    frames: int  # steps recorded (each holds one frame per camera)
    skipped: int  # steps dropped because the cameras' frames were not synchronized
    success: bool
    duration_s: float


@dataclass
class OpenHumanEpisode:
    index: int
    start_s: float  # monotonic, for the duration
    frames: int = 0
    skipped: int = 0


class HumanEpisodes:
    """One human-video episode at a time into ``writer``: begin, add synchronized frame
    sets, commit or discard. Keeps the summaries of the committed episodes."""

    def __init__(
        self,
        writer: StoreWriter,
        *,
        cameras: tuple[str, ...],
        calibration: Mapping[str, Any],
        config: CaptureConfig,
        report: Callable[[str], None] = print,
        notes: Mapping[str, Any] | None = None,
    ) -> None:
        self.writer = writer
        self.cameras = cameras
        self.calibration = dict(calibration)
        self.config = config
        self.report = report
        self.notes = dict(notes or {})  # written with every episode (who recorded it)
        self.episode: OpenHumanEpisode | None = None
        self.summaries: list[EpisodeSummary] = []

    def begin(self) -> int:
        if self.episode is not None:
            raise RuntimeError(f"episode {self.episode.index} is still open")
        index = self.writer.begin_episode(
            source=Source.HUMAN_VIDEO,
            task=self.config.task,
            operator=self.config.operator,
            calibration=self.calibration,
            notes={
                "record_hz": self.config.record_hz,
                "depth": self.config.depth,
                "cameras": list(self.cameras),
                **self.notes,
            },
        )
        self.episode = OpenHumanEpisode(index, time.monotonic())
        self.report(f"episode {index}: recording")
        return index

    def add(self, frames: Mapping[str, CameraFrame]) -> bool:
        """Store one step from one frame per camera; a step whose capture times are more than
        ``max_skew_s`` apart is skipped and counted. Returns whether it was stored."""
        ep = self._open()
        missing = [n for n in self.cameras if n not in frames]
        if missing:
            raise ValueError(f"step has no frame from camera(s) {missing}")
        stamps = [frames[n].timestamp_s for n in self.cameras]
        if max(stamps) - min(stamps) > self.config.max_skew_s:
            ep.skipped += 1
            return False
        row: dict[str, Any] = {TIMESTAMP: max(stamps)}
        for name in self.cameras:
            frame = frames[name]
            row[camera_key(name)] = frame.color
            row[camera_timestamp_key(name)] = frame.timestamp_s
            if self.config.depth:
                if frame.depth is None:
                    raise ValueError(f"camera {name!r} delivered no depth frame (depth is on)")
                row[depth_key(name)] = frame.depth
        self.writer.append(row)
        ep.frames += 1
        return True

    def skip(self) -> None:
        """A step that could not be assembled (a camera's frame missing or too old)."""
        self._open().skipped += 1

    def commit(
        self, *, success: bool, notes: Mapping[str, Any] | None = None
    ) -> EpisodeSummary | None:
        """Commit the open episode; one without a single synchronized step is discarded."""
        ep = self._open()
        duration = time.monotonic() - ep.start_s
        if ep.frames == 0:
            self.discard("no synchronized frame")
            return None
        index = self.writer.commit(
            success=success, notes={"skipped_steps": ep.skipped, **(notes or {})}
        )
        self.episode = None
        summary = EpisodeSummary(index, ep.frames, ep.skipped, success, duration)
        self.summaries.append(summary)
        self.report(
            f"episode {index}: {summary.frames} frames per camera, "
            f"{summary.skipped} skipped, {duration:.1f} s, "
            f"{'success' if success else 'failed'}"
        )
        return summary

    def discard(self, why: str = "operator discarded it") -> None:
        ep = self._open()
        if self.writer.in_episode:
            self.writer.discard()
        self.episode = None
        self.report(f"episode {ep.index} discarded ({why}; {ep.frames} frames)")

    def _open(self) -> OpenHumanEpisode:
        if self.episode is None:
            raise RuntimeError("no human-video episode is open (press start first)")
        return self.episode


class HumanCapture:
    """Records episodes from ``cameras`` (connected) into ``writer`` on ``device``'s events."""

    def __init__(
        self,
        *,
        cameras: Mapping[str, Camera],
        writer: StoreWriter,
        device: TeleopDevice,
        calibration: Mapping[str, Any],
        config: CaptureConfig,
        report: Callable[[str], None] = print,
    ) -> None:
        if len(cameras) < 1:
            raise ValueError("human capture needs at least one camera (two to triangulate)")
        self.cameras = dict(cameras)
        self.device = device
        self.config = config
        self.report = report
        self.episodes = HumanEpisodes(
            writer,
            cameras=tuple(self.cameras),
            calibration=calibration,
            config=config,
            report=report,
        )

    @property
    def summaries(self) -> list[EpisodeSummary]:
        return self.episodes.summaries

    def run(self, *, stop: Callable[[], bool] = lambda: False) -> list[EpisodeSummary]:
        """Wait for START, record until stop/discard, repeat; returns the committed episodes.
        An open episode is discarded when the loop ends (interrupt, error, ``stop``)."""
        period = 1.0 / self.config.record_hz
        episodes = self.episodes
        self.report(f"ready: press start ({', '.join(self.cameras)})")
        try:
            next_step = time.monotonic()
            while not stop():
                if self.config.episodes and len(self.summaries) >= self.config.episodes:
                    break
                events = self.device.read().events
                if episodes.episode is None:
                    if TeleopEvent.START in events:
                        episodes.begin()
                        next_step = time.monotonic()
                    else:
                        time.sleep(0.01)
                    continue
                if TeleopEvent.DISCARD in events:
                    episodes.discard()
                    continue
                if events & {TeleopEvent.SUCCESS, TeleopEvent.FAIL}:
                    episodes.commit(success=TeleopEvent.SUCCESS in events)
                    continue
                now = time.monotonic()
                if now < next_step:
                    time.sleep(min(next_step - now, 0.01))
                    continue
                next_step += period
                self._step()
        finally:
            if episodes.episode is not None:
                episodes.discard("capture stopped with the episode open")
        return self.summaries

    def _step(self) -> None:
        """One frame per camera, taken together: a camera whose newest frame is more than
        ``pair_within_s`` behind another's is given up to ``max_skew_s`` to deliver the
        matching one (a loaded machine delivers one camera's frame before the other's, and
        the newest of each would then be a whole frame apart)."""
        frames = {}
        try:
            for name, camera in self.cameras.items():
                frames[name] = camera.read_latest(self.config.max_age_s)
            deadline = time.monotonic() + self.config.max_skew_s
            while time.monotonic() < deadline:
                newest = max(frame.timestamp_s for frame in frames.values())
                behind = [
                    name
                    for name, frame in frames.items()
                    if newest - frame.timestamp_s > self.config.pair_within_s
                ]
                if not behind:
                    break
                time.sleep(0.002)
                for name in behind:
                    frames[name] = self.cameras[name].read_latest(self.config.max_age_s)
        except CameraTimeoutError as exc:
            log.warning("step skipped: %s", exc)
            self.episodes.skip()
            return
        self.episodes.add(frames)
