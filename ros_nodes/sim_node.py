"""sim_node: the simulated workcell, publishing exactly what franka_node and camera_node do.

Same topics, types and QoS as the real cell (ros_nodes.topics), so the recorder, teleop and
policy nodes cannot tell the difference. The scene resets (next seed) when an episode ends:
a SUCCESS, FAIL or DISCARD press on ``/spacenav/joy`` or the same word on
``/recorder/command``; the arm then holds at home until commands come again.

For calibration (launch/calibrate_sim.yaml) it can mount ChArUco boards (``boards:=gripper``
for the fixed cameras, ``table`` for the wrist camera) and render through a distorting,
noisy lens (``lens:=realistic``), so calibration_node is tested against known truth.
"""

from __future__ import annotations

from robot_learning.sim.camera import REALISTIC_LENS, SimLens
from robot_learning.sim.workcell import Workcell
from ros_nodes import msgs, topics
from ros_nodes.camera_publisher import CameraPublisher
from ros_nodes.episode_commands import END_WORDS, JoyPresses, command_word
from ros_nodes.robot_bridge import RobotBridge
from ros_nodes.runtime import DEFAULT, Node, run_node
from ros_nodes.sim_station import SimStation


class SimNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        task = p("task", "lift", "task of the simulated workcell: lift, push or stack")
        seed = p("seed", 0, "seed of the first episode's scene; episode i uses seed + i")
        cameras = p("cameras", ["front", "wrist"], "simulated cameras to publish")
        width = p("width", 320, "image width, px")
        height = p("height", 240, "image height, px")
        camera_hz = p("camera_hz", 15.0, "camera frame rate, Hz")
        control_hz = p("control_hz", 100.0, "control and joint-state rate, Hz")
        raw = p("publish_raw", True, "publish color/image_raw (sensor_msgs/Image rgb8)")
        compressed = p("publish_compressed", True, "publish color/image_raw/compressed (JPEG)")
        depth = p("depth", False, "publish aligned_depth_to_color/image_raw (16UC1, mm)")
        quality = p("jpeg_quality", 90, "JPEG quality of the compressed images")
        max_age = p("max_command_age_s", 0.5, "commands stamped older than this hold the arm")
        boards = p(
            "boards", "", "ChArUco boards to mount, comma-separated: gripper, table (empty: none)"
        )
        lens = p(
            "lens",
            "ideal",
            "camera lens: ideal (pinhole) or realistic (distortion and "
            "sensor noise, as calibration is tested with)",
        )
        self.node = node
        self.workcell = Workcell(
            task=task,
            seed=seed,
            cameras=tuple(cameras),
            image_size=(height, width),
            control_hz=control_hz,
            with_depth=depth,
            lenses=_lenses(lens, cameras),
            boards=tuple(b.strip() for b in boards.split(",") if b.strip()),
        )
        node.on_shutdown(self.workcell.close)
        self.bridge = RobotBridge(node, max_command_age_s=max_age)
        self.station = SimStation(self.workcell, self.bridge, seed=seed)
        self.cameras = {
            name: CameraPublisher(
                node,
                name,
                cam.intrinsics,
                raw=raw,
                compressed=compressed,
                depth=depth,
                jpeg_quality=quality,
                source="sim_node",
            )
            for name, cam in self.workcell.cameras.items()
        }
        self.camera_period_s = 1.0 / camera_hz
        self._next_frame_s = self.station.now_stamp_s
        self._joy = JoyPresses()
        node.create_subscription(msgs.Joy, topics.JOY, self._on_joy, DEFAULT)
        node.create_subscription(msgs.String, topics.RECORDER_COMMAND, self._on_command, DEFAULT)
        node.create_timer(1.0 / control_hz, self._tick)
        node.log.info(
            "sim workcell %r (seed %d), cameras %s at %.0f Hz, control %.0f Hz",
            task,
            seed,
            list(cameras),
            camera_hz,
            control_hz,
        )

    def _tick(self) -> None:
        states = self.station.tick()
        if states and self.station.now_stamp_s >= self._next_frame_s:
            stamp = self.station.now_stamp_s
            for name, pub in self.cameras.items():
                pub.publish(self.workcell.cameras[name].read(), stamp)
            self._next_frame_s = max(self._next_frame_s + self.camera_period_s, stamp)

    def _end_episode(self, why: str) -> None:
        self.node.log.info(
            "episode over (%s): new scene with seed %d",
            why,
            self.station.seed + self.station.episode + 1,
        )
        self.station.next_episode()
        self._next_frame_s = self.station.now_stamp_s

    def _on_joy(self, msg: msgs.Joy) -> None:
        ended = [w for w in self._joy.words(msg) if w in END_WORDS]
        if ended:
            self._end_episode(f"joy button {ended[0]}")

    def _on_command(self, msg: msgs.String) -> None:
        if command_word(msg) in END_WORDS:
            self._end_episode(f"recorder command {msg.data!r}")


def _lenses(lens: str, cameras: list[str]) -> dict[str, SimLens]:
    known = {"ideal": SimLens(), "realistic": REALISTIC_LENS}
    if lens not in known:
        raise ValueError(f"sim_node: parameter lens must be one of {sorted(known)}, got {lens!r}")
    return {name: known[lens] for name in cameras}


def main(argv: list[str] | None = None) -> int:
    return run_node("sim_node", SimNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
