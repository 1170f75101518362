"""realsense-ros-shaped camera topics for one camera: shared by camera_node and sim_node."""

from __future__ import annotations

import json

from robot_learning.hardware.camera import CameraFrame, CameraIntrinsics
from ros_nodes import convert, msgs
from ros_nodes.runtime import LATCHED, SENSOR_DATA, Node
from ros_nodes.topics import CameraTopics


class CameraPublisher:
    """Color (raw and/or JPEG-compressed), camera_info and aligned depth of one camera.

    Stamps are capture times on the station clock, in ``<name>_color_optical_frame`` (depth
    is aligned to color, so it shares the frame), as realsense-ros does with alignment on.
    QoS: sensor data (best effort, depth 5), realsense-ros' default for images. Beside them,
    latched ``device_info`` says which device this is (``serial``, empty when it has none to
    read: OpenCV, simulated), so a recorder can refuse a calibration made for another camera.
    """

    def __init__(
        self,
        node: Node,
        name: str,
        intrinsics: CameraIntrinsics,
        *,
        raw: bool,
        compressed: bool,
        depth: bool,
        jpeg_quality: int,
        serial: str = "",
        source: str = "",
    ) -> None:
        self.topics = CameraTopics(name)
        self._device_info = node.create_publisher(msgs.String, self.topics.device_info, LATCHED)
        self._device_info.publish(
            msgs.String(data=json.dumps({"serial": serial, "source": source}))
        )
        self.intrinsics = intrinsics
        self.jpeg_quality = jpeg_quality
        self._raw = (
            node.create_publisher(msgs.Image, self.topics.color, SENSOR_DATA) if raw else None
        )
        self._compressed = (
            node.create_publisher(msgs.CompressedImage, self.topics.compressed, SENSOR_DATA)
            if compressed
            else None
        )
        self._depth = (
            node.create_publisher(msgs.Image, self.topics.aligned_depth, SENSOR_DATA)
            if depth
            else None
        )
        self._info = node.create_publisher(msgs.CameraInfo, self.topics.camera_info, SENSOR_DATA)
        self.published = 0

    def publish(self, frame: CameraFrame, stamp_s: float) -> None:
        frame_id = self.topics.optical_frame
        if self._raw is not None:
            self._raw.publish(convert.rgb_image(frame.color, stamp_s, frame_id))
        if self._compressed is not None:
            self._compressed.publish(
                convert.compressed_image(frame.color, stamp_s, frame_id, self.jpeg_quality)
            )
        if self._depth is not None and frame.depth is not None:
            self._depth.publish(convert.depth_image(frame.depth, stamp_s, frame_id))
        self._info.publish(convert.camera_info(self.intrinsics, stamp_s, frame_id))
        self.published += 1
