"""camera_node: one RealSense, OpenCV or simulated camera on realsense-ros topics.

``/camera/<name>/color/image_raw`` (rgb8), ``.../color/image_raw/compressed`` (JPEG),
``.../color/camera_info`` and, with depth, ``.../aligned_depth_to_color/image_raw`` (16UC1,
mm), stamped with the capture time on the station clock. The node name is the camera name
(``-r __node:=front``), as with realsense-ros' ``camera_name``.

``source:=sim`` renders a simulated workcell camera of its own; it follows the arm on
``/franka/joint_states`` (the objects stay where the scene's seed put them), which is enough
to run and test a graph with a separate camera process. The sim_node's own cameras show the
live scene.
"""

from __future__ import annotations

from robot_learning.hardware.camera import Camera, CameraTimeoutError
from ros_nodes import msgs, topics
from ros_nodes.camera_publisher import CameraPublisher
from ros_nodes.runtime import DEFAULT, Node, run_node


class CameraNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        source = p("source", "realsense", "realsense, opencv or sim")
        self.name = p("camera_name", node.name, "camera name in topics and frames")
        serial = p(
            "serial_no",
            "",
            "realsense: serial number (empty: the only one); sim: the serial it reports",
        )
        device = p("device", "0", "opencv: device index, file or URL")
        width = p("width", 640, "image width, px")
        height = p("height", 480, "image height, px")
        fps = p("fps", 30.0, "frame rate, Hz")
        depth = p("depth", False, "publish aligned depth (realsense, sim)")
        raw = p("publish_raw", True, "publish color/image_raw")
        compressed = p("publish_compressed", True, "publish color/image_raw/compressed")
        quality = p("jpeg_quality", 90, "JPEG quality of the compressed images")
        sim_camera = p("sim_camera", "front", "sim: which workcell camera to render")
        self.node = node
        self.source = source
        self.camera = self._open(
            source,
            serial=serial,
            device=device,
            width=width,
            height=height,
            fps=fps,
            depth=depth,
            sim_camera=sim_camera,
        )
        self.camera.connect()
        node.on_shutdown(self.camera.disconnect)
        # Which device this is (device_info), so a recorder can refuse a calibration made
        # for another camera: RealSense's resolved serial, a simulated camera's stand-in,
        # none for OpenCV devices (they have no serial to read).
        reported = {
            "realsense": str(getattr(self.camera, "serial", "") or ""),
            "sim": serial.lstrip("_"),
        }.get(source, "")
        self.publisher = CameraPublisher(
            node,
            self.name,
            self.camera.intrinsics,
            raw=raw,
            compressed=compressed,
            depth=depth,
            jpeg_quality=quality,
            serial=reported,
            source=source,
        )
        self.period_s = 1.0 / fps
        node.create_timer(self.period_s, self._tick)
        node.log.info("camera %s from %s: %dx%d at %.0f Hz", self.name, source, width, height, fps)

    def _open(
        self,
        source: str,
        *,
        serial: str,
        device: str,
        width: int,
        height: int,
        fps: float,
        depth: bool,
        sim_camera: str,
    ) -> Camera:
        if source == "realsense":
            from robot_learning.hardware.realsense import RealSenseCamera

            return RealSenseCamera(
                name=self.name,
                serial=serial.lstrip("_") or None,
                width=width,
                height=height,
                fps=int(fps),
                enable_depth=depth,
            )
        if source == "opencv":
            from robot_learning.hardware.opencv_camera import OpenCVCamera

            return OpenCVCamera(
                name=self.name,
                source=int(device) if device.isdigit() else device,
                width=width,
                height=height,
                fps=fps,
            )
        if source == "sim":
            from robot_learning.sim.workcell import Workcell

            self.workcell = Workcell(
                cameras=(sim_camera,), image_size=(height, width), with_depth=depth
            )
            self.node.on_shutdown(self.workcell.close)
            self.node.create_subscription(
                msgs.JointState, topics.JOINT_STATES, self._follow_arm, DEFAULT
            )
            return self.workcell.cameras[sim_camera]
        raise ValueError(
            f"camera_node: parameter source must be realsense, opencv or sim, got {source!r}"
        )

    def _follow_arm(self, msg: msgs.JointState) -> None:
        import mujoco
        import numpy as np

        if len(msg.position) == 7:
            self.workcell.robot.reset(np.asarray(msg.position, float))
            mujoco.mj_forward(self.workcell.model, self.workcell.data)

    def _tick(self) -> None:
        try:
            frame = self.camera.read(timeout_s=max(1.0, 3 * self.period_s))
        except CameraTimeoutError as exc:
            self.node.log.error("camera %s: %s", self.name, exc)
            return
        stamp = self.node.now_s() if self.source == "sim" else frame.timestamp_s
        self.publisher.publish(frame, stamp)


def main(argv: list[str] | None = None) -> int:
    return run_node("camera_node", CameraNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
