"""human_capture_node: film the task with calibrated cameras; their color (+ depth) frames,
paired by capture stamp, into ``human_video`` episodes. No robot topic is needed.

What ``rl human collect`` does, over ROS 2: the frames come from camera topics
(``/camera/<name>/color/image_raw/compressed`` or ``image_raw``, ``color/camera_info``, with
``depth:=true`` ``aligned_depth_to_color/image_raw``), from camera_node, sim_node or
realsense-ros. The episode writing, the synchronization rule and the calibration check are
``data_collection.human_capture``'s (one place for both front ends).

Steps follow the first camera's frames (at most ``record_hz``): each is paired with every
other camera's frame stamped nearest to it; a step whose frames lie more than
``max_frame_skew_s`` apart, or that lacks a camera's frame (or its depth image), is skipped
and counted, never stored misaligned. Cameras triggered together (hardware sync, the
simulator) pair at identical stamps. A step is assembled once every camera (and, with depth,
every depth stream) has delivered a frame stamped at or after it, so its partners are in
however late they arrive (a loaded machine delays delivery and the node's own dispatch
alike); only a camera still behind ``max_frame_wait_s`` after the step's stamp costs it.
The episode is committed once the first camera has a frame after the end press, or
``max_frame_wait_s`` after it.

Episodes start, end (success/fail) and are discarded on the operator's Joy buttons
(``/spacenav/joy``, ``ros_nodes.topics.JoyButton``) or words on ``/recorder/command``, as
with recorder_node; it also reports on ``/recorder/status`` (latched JSON), so a scripted
operator or a GUI drives either graph the same way. Every episode records the calibration
(``calibration:=FILE``, default ``$RL_CALIBRATION_DIR/<workcell>.yaml``; refused when
doubtful, checked at startup; ``uncalibrated:=true`` records intrinsics only). A camera
silent for ``camera_timeout_s`` is reported and its steps are skipped until it returns;
START is refused while one is silent. Stopped mid-episode (SIGINT/SIGTERM), it discards
the open episode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_collection.human_capture import (
    CaptureConfig,
    HumanEpisodes,
    capture_calibration,
    human_video_schema,
)
from data_collection.recorder import calibration_mismatch
from robot_learning.hardware.camera import CameraFrame
from robot_learning.store import StoreError, StoreFullError, StoreWriter
from robot_learning.store.schema import SchemaError
from ros_nodes import msgs, topics
from ros_nodes.camera_streams import CameraStream, CameraStreams
from ros_nodes.episode_commands import EpisodeCommands
from ros_nodes.runtime import LATCHED, Node, ParameterError, run_node

HORIZON_S = 3.0  # frames kept per camera


@dataclass
class Clock:
    """Where the open episode stands on the stamp axis (station clock, s)."""

    start_s: float
    cursor_s: float  # reference frames up to here are consumed
    next_step_s: float  # the next step takes the first reference frame from about here
    end_s: float | None = None
    success: bool = False
    dropped_at_start: dict[str, int] | None = None


class HumanCaptureNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        self.store_path = Path(p("store", "human.zarr", "store to append episodes to"))
        cameras = p(
            "cameras",
            ["front", "side"],
            "camera names (topics /camera/<name>/...); the first one paces the steps",
        )
        camera_hz = p("camera_hz", 30.0, "nominal camera rate, Hz (for dropped-frame counts)")
        transport = p("image_transport", "compressed", "raw or compressed color images")
        self.max_frame_wait_s = p(
            "max_frame_wait_s",
            1.0,
            "how long a step waits for the other cameras' frames of its instant, s (then skipped)",
        )
        self.camera_timeout_s = p(
            "camera_timeout_s",
            1.0,
            "a camera silent this long is reported and its steps skipped until it returns, s",
        )
        self.min_free_mb = p(
            "min_free_mb",
            100.0,
            "refuse to start an episode with less free "
            "space than this on the store's filesystem, MB",
        )
        calibration = p(
            "calibration", "", "calibration file (empty: $RL_CALIBRATION_DIR/<workcell>.yaml)"
        )
        workcell = p("workcell", "lab", "workcell whose calibration to use")
        uncalibrated = p(
            "uncalibrated", False, "record without camera poses (tracks cannot be triangulated)"
        )
        try:
            self.config = CaptureConfig(
                task=p("task", "human", "task name written with every episode"),
                operator=p("operator", "", "operator name written with every episode"),
                record_hz=p("record_hz", 30.0, "most steps per second stored, Hz"),
                depth=p("depth", False, "also record aligned depth"),
                max_skew_s=p(
                    "max_frame_skew_s",
                    0.025,
                    "a step's frames are at most this "
                    "far apart in capture time, s (under a frame period: never a "
                    "neighbouring frame)",
                ),
                jpeg_quality=p("jpeg_quality", 90, "JPEG quality of stored images"),
            )
        except ValueError as exc:
            raise ParameterError(f"human_capture_node: {exc}") from exc
        if not cameras:
            raise ParameterError(
                "human_capture_node: parameter cameras is empty; name the "
                "cameras (two to triangulate)"
            )
        self.node = node
        self.calibration: dict[str, Any] | None = None
        if not uncalibrated:  # a doubtful file stops the node now, not at the first START
            try:
                # calibrated: the file's intrinsics are recorded (checked against the live
                # image size at START), so only the names are needed here
                self.calibration = capture_calibration(
                    dict.fromkeys(cameras),
                    path=calibration or None,  # type: ignore[arg-type]
                    workcell=workcell,
                )
            except (ValueError, OSError) as exc:
                raise ParameterError(f"human_capture_node: parameter calibration: {exc}") from exc
        self.streams = CameraStreams(
            node,
            cameras,
            transport=transport,
            camera_hz=camera_hz,
            horizon_s=HORIZON_S,
            depth=self.config.depth,
        )
        self.reference = self.streams.streams[cameras[0]]
        self.episodes: HumanEpisodes | None = None
        self.clock: Clock | None = None
        self.discarded = 0
        self.last_error: str | None = None
        self.commands = EpisodeCommands(
            node, open_episode=lambda: self.clock, begin=self._begin, discard=self._discard
        )
        self._status = node.create_publisher(msgs.String, topics.RECORDER_STATUS, LATCHED)
        node.create_timer(min(0.05, 0.5 / self.config.record_hz), self._tick)
        node.create_timer(0.5, self._publish_status)
        node.on_shutdown(self._shutdown)
        self._publish_status()
        node.log.info(
            "human capture from cameras %s (%s%s) into %s, %s",
            list(cameras),
            transport,
            " + depth" if self.config.depth else "",
            self.store_path,
            "uncalibrated" if uncalibrated else "calibrated",
        )

    # -- episodes ------------------------------------------------------------------------
    def _writer_episodes(self) -> HumanEpisodes:
        """The store and episode writer, made at the first START (from the camera_info)."""
        if self.episodes is None:
            intrinsics = self.streams.intrinsics
            calibration = self.calibration or capture_calibration(intrinsics, uncalibrated=True)  # type: ignore[arg-type]
            schema = human_video_schema(
                intrinsics,
                depth=self.config.depth,  # type: ignore[arg-type]
                record_hz=self.config.record_hz,
                jpeg_quality=self.config.jpeg_quality,
            )
            writer = StoreWriter(
                self.store_path, schema, min_free_bytes=int(self.min_free_mb * 1e6)
            )
            self.episodes = HumanEpisodes(
                writer,
                cameras=tuple(self.streams.streams),
                calibration=calibration,
                config=self.config,
                report=self.node.log.info,
                notes={"recorded_by": self.node.fqn, "transport": "ros2"},
            )
        return self.episodes

    def _begin(self, stamp_s: float) -> None:
        if self.clock is not None:
            self.node.log.warning("start pressed during an episode: ignored")
            return
        refusal = self.streams.start_refusal()
        if refusal:
            return self._error(f"cannot start an episode: {refusal}")
        mismatch = self._calibration_mismatch()
        if mismatch:
            return self._error(f"cannot start an episode: {mismatch}")
        try:
            self._writer_episodes().begin()
        except (StoreError, SchemaError) as exc:  # full disk, locked or another store's
            return self._error(f"cannot start an episode in {self.store_path}: {exc}")
        self.clock = Clock(
            stamp_s,
            stamp_s - 1e-6,
            stamp_s,
            dropped_at_start={n: s.gaps.dropped for n, s in self.streams.streams.items()},
        )
        self.streams.reset_counts()
        self.last_error = None
        self._publish_status()

    def _calibration_mismatch(self) -> str | None:
        """The calibration was made at another image size, or for other cameras (serials),
        than the cameras deliver."""
        return calibration_mismatch(
            self.calibration or {}, self.streams.intrinsics, self.streams.serials
        )

    def _discard(self, why: str) -> None:
        assert self.episodes is not None
        self.episodes.discard(why)
        self.clock = None
        self.discarded += 1
        self._publish_status()

    def _commit(self) -> None:
        assert self.episodes is not None and self.clock is not None
        clock = self.clock
        dropped = {
            n: s.gaps.dropped - (clock.dropped_at_start or {}).get(n, 0)
            for n, s in self.streams.streams.items()
        }
        self.clock = None
        if self.episodes.commit(success=clock.success, notes={"dropped_frames": dropped}) is None:
            self.discarded += 1
        self._publish_status()

    # -- steps ---------------------------------------------------------------------------
    def _tick(self) -> None:
        try:
            self._record_due_steps()
        except StoreFullError as exc:
            self.clock = None
            if self.episodes is not None and self.episodes.episode is not None:
                try:
                    self.episodes.discard("the disk is full")
                except OSError as error:
                    self.node.log.error("could not free the open episode: %s", error)
            self.node.request_shutdown(str(exc), exit_code=3)

    def _record_due_steps(self) -> None:
        clock = self.clock
        if clock is None:
            return
        now = self.node.now_s()
        for name, last in self.streams.newly_silent(now, self.camera_timeout_s):
            self._error(
                f"camera {name}: no frame on {self.streams.streams[name].topic} for "
                f"{now - last:.1f} s; steps are skipped until it returns"
            )
        given_up_s = now - self.max_frame_wait_s  # instants no longer waited for
        end = clock.end_s if clock.end_s is not None else float("inf")
        period = 1.0 / self.config.record_hz
        for stamp, msg in list(self.reference.frames.between(clock.cursor_s, end)):
            if stamp > given_up_s and self.streams.arrived_until() < stamp:
                return  # the other frames of this instant are still on their way
            clock.cursor_s = stamp
            if stamp < clock.next_step_s - 0.25 * period:
                continue  # cameras faster than record_hz: between steps
            clock.next_step_s = max(clock.next_step_s + period, stamp + 0.5 * period)
            self._step(stamp, msg)
        newest = self.reference.frames.newest_s
        if clock.end_s is not None and (
            (newest is not None and newest > clock.end_s) or clock.end_s <= given_up_s
        ):
            self._commit()

    def _step(self, stamp: float, msg: Any) -> None:
        assert self.episodes is not None
        frames: dict[str, CameraFrame] = {}
        for name, stream in self.streams.streams.items():
            found = (stamp, msg) if stream is self.reference else stream.frames.nearest(stamp)
            if found is None or abs(found[0] - stamp) > self.config.max_skew_s:
                stream.late += 1
                self.episodes.skip()
                return
            frame = self._decode(stream, *found)
            if frame is None:
                self.episodes.skip()
                return
            frames[name] = frame
        self.episodes.add(frames)

    def _decode(self, stream: CameraStream, stamp: float, msg: Any) -> CameraFrame | None:
        try:
            return stream.decode(stamp, msg)
        except KeyError as exc:  # its depth image is missing
            stream.late += 1
            self.node.log.warning("step at %.3f skipped: %s", stamp, exc.args[0])
            return None

    # -- status and shutdown -------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """The cameras can start (camera_info and device_info in, none silent): START will work."""
        return self.streams.start_refusal() is None

    def _error(self, message: str) -> None:
        self.node.log.error("%s", message)
        self.last_error = message
        self._publish_status()

    def _publish_status(self) -> None:
        open_ = None if self.episodes is None else self.episodes.episode
        summaries = [] if self.episodes is None else self.episodes.summaries
        self._status.publish(
            msgs.String(
                data=json.dumps(
                    {
                        "state": "recording" if open_ else "idle",
                        "ready": self.ready,
                        "source": "human_video",
                        "episode": open_.index if open_ else None,
                        "steps": open_.frames if open_ else 0,
                        "skipped_steps": open_.skipped if open_ else 0,
                        **self.streams.counts(),
                        "committed": len(summaries),
                        "discarded": self.discarded,
                        "frames_per_episode": [s.frames for s in summaries],
                        "error": self.last_error,
                    }
                )
            )
        )

    def _shutdown(self) -> None:
        if self.clock is not None:
            self._discard(
                "the capture was stopped mid-episode (interrupted); nothing of it is committed"
            )
        if self.episodes is not None:
            self.episodes.writer.close()


def main(argv: list[str] | None = None) -> int:
    return run_node("human_capture_node", HumanCaptureNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
