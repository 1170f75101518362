"""The cameras a recording node listens to: frames by capture stamp, intrinsics, gaps and
silence. Shared by recorder_node (robot episodes) and human_capture_node (human video).

Per camera: the color topic (raw ``image_raw`` or JPEG ``image_raw/compressed``), its
``camera_info`` (intrinsics), and with ``depth`` the ``aligned_depth_to_color`` image (same
stamp as its color frame, as realsense-ros publishes it with alignment on). Frames are kept
undecoded in a ``StampedBuffer``; only the frames a step takes are decoded. Each camera's
latched ``device_info`` (its serial) is waited for up to ``DEVICE_INFO_WAIT_S`` after its
first camera_info: a latched message can arrive after the first frames, and a START taken
before it would skip the serial check. A driver that never sends one (realsense-ros) is then
taken as reporting no serial, with a warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from data_collection.alignment import FrameGaps, StampedBuffer
from robot_learning.hardware.camera import CameraFrame, CameraIntrinsics
from ros_nodes import convert, msgs
from ros_nodes.runtime import FRAME_RECORDING, LATCHED, SENSOR_DATA, Node
from ros_nodes.topics import CameraTopics

TRANSPORTS = ("raw", "compressed")
DEPTH_MATCH_S = 1e-3  # a depth image belongs to the color frame stamped within this
DEVICE_INFO_WAIT_S = 10.0  # after the first camera_info, how long device_info is waited for


@dataclass
class CameraStream:
    topics: CameraTopics
    topic: str  # the color topic subscribed (raw or compressed)
    frames: StampedBuffer[Any]
    gaps: FrameGaps
    depth: StampedBuffer[msgs.Image] | None = None
    intrinsics: CameraIntrinsics | None = None
    last_rx_s: float | None = None  # wall time of the last frame
    late: int = 0  # steps that found no fresh enough frame of this camera
    silent: bool = False
    serial: str | None = None  # what the camera node reports on device_info (None: nothing)
    device_info_seen: bool = False
    first_info_s: float | None = None  # wall time the first camera_info arrived

    def decode(self, stamp_s: float, msg: Any) -> CameraFrame:
        """The color frame (and, with depth, its aligned depth image) as a CameraFrame;
        KeyError when the depth image of that instant has not arrived."""
        color = (
            convert.compressed_array(msg)
            if isinstance(msg, msgs.CompressedImage)
            else convert.image_array(msg)
        )
        depth = None
        if self.depth is not None:
            found = self.depth.nearest(stamp_s)
            if found is None or abs(found[0] - stamp_s) > DEPTH_MATCH_S:
                raise KeyError(
                    f"no depth image stamped {stamp_s:.3f} on {self.topics.aligned_depth}"
                )
            depth = convert.image_array(found[1])
        return CameraFrame(
            color=color,
            timestamp_s=stamp_s,
            received_s=stamp_s,
            frame_index=0,
            depth=depth,
            camera_name=self.topics.name,
        )


class CameraStreams:
    """Subscribes to ``names``' cameras on ``node``; ``streams`` by camera name."""

    def __init__(
        self,
        node: Node,
        names: Iterable[str],
        *,
        transport: str,
        camera_hz: float,
        horizon_s: float,
        depth: bool = False,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(
                f"{node.name}: image_transport must be raw or compressed, got {transport!r}"
            )
        self.node = node
        self.transport = transport
        self.streams: dict[str, CameraStream] = {}
        for name in names:
            names_ = CameraTopics(name)
            stream = CameraStream(
                names_,
                names_.color if transport == "raw" else names_.compressed,
                StampedBuffer(horizon_s=horizon_s),
                FrameGaps(1.0 / camera_hz),
                depth=StampedBuffer(horizon_s=horizon_s) if depth else None,
            )
            self.streams[name] = stream
            color_type = msgs.Image if transport == "raw" else msgs.CompressedImage
            node.create_subscription(
                color_type, stream.topic, lambda m, s=stream: self._on_frame(s, m), FRAME_RECORDING
            )
            node.create_subscription(
                msgs.CameraInfo,
                names_.camera_info,
                lambda m, s=stream: self._on_info(s, m),
                SENSOR_DATA,
            )
            node.create_subscription(
                msgs.String,
                names_.device_info,
                lambda m, s=stream: self._on_device_info(s, m),
                LATCHED,
            )
            if stream.depth is not None:
                node.create_subscription(
                    msgs.Image,
                    names_.aligned_depth,
                    lambda m, b=stream.depth: b.add(convert.stamp_s(m), m),
                    FRAME_RECORDING,
                )

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.streams.values())

    def _on_frame(self, stream: CameraStream, msg: msgs.Image | msgs.CompressedImage) -> None:
        stamp = convert.stamp_s(msg)
        stream.frames.add(stamp, msg)
        stream.gaps.add(stamp)
        stream.last_rx_s = self.node.now_s()
        if stream.silent:
            stream.silent = False
            self.node.log.info("camera %s delivers frames again", stream.topics.name)

    def _on_info(self, stream: CameraStream, msg: msgs.CameraInfo) -> None:
        stream.intrinsics = convert.intrinsics(msg)
        if stream.first_info_s is None:
            stream.first_info_s = self.node.now_s()

    def _on_device_info(self, stream: CameraStream, msg: msgs.String) -> None:
        try:
            stream.serial = str(json.loads(msg.data).get("serial") or "") or None
        except (ValueError, AttributeError):
            self.node.log.warning("%s: not device JSON: %r", stream.topics.device_info, msg.data)
        stream.device_info_seen = True

    # -- what a node checks and reports ---------------------------------------------------
    @property
    def intrinsics(self) -> dict[str, CameraIntrinsics | None]:
        return {n: s.intrinsics for n, s in self.streams.items()}

    @property
    def serials(self) -> dict[str, str | None]:
        return {n: s.serial for n, s in self.streams.items()}

    def without_info(self) -> list[str]:
        """camera_info topics nothing has arrived on yet."""
        return [s.topics.camera_info for s in self if s.intrinsics is None]

    def awaiting_device_info(self) -> list[str]:
        """device_info topics still waited for: nothing on them yet, and the camera's first
        camera_info came less than ``DEVICE_INFO_WAIT_S`` ago. Past that, the camera is
        taken as one that reports no serial (warned once)."""
        now = self.node.now_s()
        waiting = []
        for stream in self:
            if stream.device_info_seen or stream.first_info_s is None:
                continue
            if now - stream.first_info_s < DEVICE_INFO_WAIT_S:
                waiting.append(stream.topics.device_info)
            else:
                stream.device_info_seen = True  # no such topic from this driver
                self.node.log.warning(
                    "nothing on %s after %.0f s: camera %s's serial is not checked against "
                    "the calibration",
                    stream.topics.device_info,
                    DEVICE_INFO_WAIT_S,
                    stream.topics.name,
                )
        return waiting

    def silent_topics(self) -> list[str]:
        return [s.topic for s in self if s.silent]

    def start_refusal(self) -> str | None:
        """Why an episode cannot start on these cameras yet (a camera_info missing, a camera
        silent, its device_info still waited for), or None when it can."""
        missing = self.without_info()
        if missing:
            return f"no camera_info yet on {', '.join(missing)}; are the camera nodes running?"
        silent = self.silent_topics()
        if silent:
            return f"no frames on {', '.join(silent)}"
        waiting = self.awaiting_device_info()
        if waiting:
            return f"no device_info yet on {', '.join(waiting)} (which camera is it?)"
        return None

    def newly_silent(self, now_s: float, timeout_s: float) -> list[tuple[str, float]]:
        """Cameras that have just gone silent (no frame for ``timeout_s``), marked silent,
        with the wall time of their last frame."""
        found = []
        for name, stream in self.streams.items():
            last = stream.last_rx_s
            if stream.silent or last is None or now_s - last <= timeout_s:
                continue
            stream.silent = True
            found.append((name, last))
        return found

    def arrived_until(self, others: Iterable[StampedBuffer] = ()) -> float:
        """The newest instant every camera (colour and depth) and every buffer in ``others``
        has delivered a sample at or after: streams arrive in stamp order, so no sample
        stamped before it is still on its way. -inf until each has delivered one."""
        buffers = [s.frames for s in self] + [s.depth for s in self if s.depth is not None]
        newest = [b.newest_s for b in (*buffers, *others)]
        if any(t is None for t in newest):
            return float("-inf")
        return min(newest)  # type: ignore[type-var]

    def reset_counts(self) -> None:
        for stream in self:
            stream.late = 0

    def counts(self) -> dict[str, Any]:
        """What the status reports about the cameras."""
        return {
            "dropped_frames": {n: s.gaps.dropped for n, s in self.streams.items()},
            "late_frames": {n: s.late for n, s in self.streams.items()},
            "silent_cameras": [n for n, s in self.streams.items() if s.silent],
        }
