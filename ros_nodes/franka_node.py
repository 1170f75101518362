"""franka_node: the robot bridge over franky (real FR3, or franky-sim) or the simulated arm.

Topics and the command guard: ``ros_nodes.robot_bridge``. ``robot:=franky`` talks to the
arm at ``host`` through ``FrankaRobot`` and publishes its state at ``state_hz``;
``robot:=sim`` runs the lockstep simulated arm paced to the wall clock (no cameras: that is
sim_node).

``/franka/home`` (String, any data) drives the arm to ``home_joints`` (default: the
workcell's home posture, where the simulated demos start) with a joint motion at
``relative_dynamics_factor``, between episodes: it is refused while commands flow (one came
within ``max_command_age_s``) and while homing; during the motion every command is refused
(``/franka/status`` says ``homing``). Reaching home clears an earlier error's hold. On
``robot:=sim`` the arm is put back home at once.
"""

from __future__ import annotations

import numpy as np

from robot_learning.errors import RobotLearningError
from robot_learning.hardware.robot import RobotReflexError
from robot_learning.sim.scene import HOME_JOINTS_RAD
from ros_nodes import msgs, topics
from ros_nodes.robot_bridge import RobotBridge
from ros_nodes.runtime import DEFAULT, Node, run_node
from ros_nodes.sim_station import SimStation


class FrankaNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        kind = p("robot", "franky", "franky (real arm or franky-sim) or sim (lockstep MuJoCo)")
        host = p("host", "172.16.0.2", "franky: the robot's address")
        rate_hz = p("state_hz", 100.0, "state publishing (and sim control) rate, Hz")
        max_age = p("max_command_age_s", 0.5, "commands stamped older than this hold the arm")
        dynamics = p("relative_dynamics_factor", 0.1, "franky: speed scaling, 0..1")
        realtime = p(
            "enforce_realtime",
            True,
            "franky: require a real-time kernel (the real "
            "arm needs one; false for franky-sim on an ordinary machine)",
        )
        home = p("home_joints", list(HOME_JOINTS_RAD), "/franka/home's joint angles, rad")
        self.node = node
        self.kind = kind
        self.max_age = max_age
        self.home_joints = np.asarray(home, dtype=float)
        if self.home_joints.shape != (7,):
            raise ValueError(f"franka_node: home_joints must be 7 angles in rad, got {home}")
        self.bridge = RobotBridge(node, max_command_age_s=max_age)
        self._sent = None
        if kind == "sim":
            from robot_learning.sim.workcell import Workcell

            workcell = Workcell(cameras=(), control_hz=rate_hz)
            node.on_shutdown(workcell.close)
            self.station = SimStation(workcell, self.bridge, seed=0)
            node.create_timer(1.0 / rate_hz, self.station.tick)
        elif kind == "franky":
            from robot_learning.hardware.franka import FrankaRobot

            self.robot = FrankaRobot(
                host=host, relative_dynamics_factor=dynamics, enforce_realtime=realtime
            )
            self.robot.connect()
            node.on_shutdown(self.robot.disconnect)
            node.create_timer(1.0 / rate_hz, self._franky_tick)
        else:
            raise ValueError(f"franka_node: parameter robot must be franky or sim, got {kind!r}")
        node.create_subscription(msgs.String, topics.HOME, self._on_home, DEFAULT)
        node.log.info("robot bridge on %s", kind if kind == "sim" else f"franky at {host}")

    def _on_home(self, _msg: msgs.String) -> None:
        refusal = self.bridge.home_refusal(quiet_s=self.max_age)
        if refusal:
            self.node.log.error("home refused: %s", refusal)
            return
        self.node.log.info("homing to %s rad", np.round(self.home_joints, 3).tolist())
        if self.kind == "sim":
            self.station.reset()
            self.node.log.info("home reached (simulated arm reset)")
            return
        self.bridge.begin_homing()
        try:
            self.robot.move_joints(self.home_joints, blocking=False)
        except (ValueError, RobotLearningError) as exc:
            self.node.log.error("home refused: %s", exc)
            self.bridge.end_homing(reached=False)

    def _franky_tick(self) -> None:
        if self.bridge.homing:
            self._advance_homing()
        else:
            self._follow_target()
        state = self.robot.read_state()
        self.bridge.publish_state(state, state.timestamp_s)

    def _follow_target(self) -> None:
        target = self.bridge.target
        try:
            if target is None and self._sent is not None:
                self.robot.stop()
            elif target is not None and target is not self._sent:
                self.robot.send_cartesian_target(target)
            self._sent = target
        except RobotReflexError as exc:
            self.bridge.report_error(f"{exc}; recovering")
            self.bridge.clear_target()
            self.robot.recover()

    def _advance_homing(self) -> None:
        try:
            done = self.robot.wait_for_motion(timeout_s=0.0)
        except RobotLearningError as exc:  # a reflex (recovered) or the connection
            self.bridge.end_homing(reached=False)
            recoverable = isinstance(exc, RobotReflexError)
            self.bridge.report_error(f"{exc} (while homing){'; recovering' if recoverable else ''}")
            if recoverable:
                self.robot.recover()
            return
        if done:
            self._sent = None
            self.bridge.end_homing(reached=True)
            self.node.log.info("home reached")


def main(argv: list[str] | None = None) -> int:
    return run_node("franka_node", FrankaNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
