"""teleop_node: SpaceMouse, keyboard or scripted operator -> spacenav topics and arm targets.

``device:=scripted_intervention`` is an operator for deployment graphs with nobody at the
station: it lets the policy drive, holds the intervene button while moving for a stretch,
lets go and presses SUCCESS (``robot_learning.runtime.scripted_intervention``). In a
deployment the arbiter is the one command publisher: run this node with
``publish_target:=false``.

Publishes what the spacenav driver does (``/spacenav/twist_stamped``, ``/spacenav/joy``; our
Joy carries the episode buttons, layout in ``ros_nodes.topics.JoyButton``) and, between an
episode's START and its end, integrates the twist into absolute targets
(``TwistIntegrator``, seeded from the measured ``/franka/ee_pose`` so nothing jumps) on
``/franka/target_pose`` and ``/franka_gripper/command``: the one command publisher the
robot bridge accepts.

An episode starts and ends on the device's own buttons or on ``/recorder/command`` (start |
success | fail | discard), which the recorder follows too: a device without a START button
(a two-button SpaceMouse in the ``intervene`` map) or a GUI runs episodes through the topic.
``spacemouse_buttons:=episode`` (collection, human video: nobody to take over from) gives a
two-button SpaceMouse the episode buttons itself: right tap START, right held FAIL, left tap
gripper, left held SUCCESS (``robot_learning.hardware.spacemouse.BUTTON_MAPS``).
"""

from __future__ import annotations

import json

import numpy as np

from robot_learning.hardware.robot import RobotState
from robot_learning.hardware.teleop import TeleopDevice, TeleopEvent
from robot_learning.hardware.twist_integrator import TwistIntegrator
from ros_nodes import convert, msgs, topics
from ros_nodes.episode_commands import END_WORDS, command_word
from ros_nodes.runtime import DEFAULT, LATCHED, SENSOR_DATA, Node, run_node
from ros_nodes.topics import JoyButton

END_EVENTS = (TeleopEvent.SUCCESS, TeleopEvent.FAIL, TeleopEvent.DISCARD)
EVENT_BUTTONS = {
    TeleopEvent.START: JoyButton.START,
    TeleopEvent.SUCCESS: JoyButton.SUCCESS,
    TeleopEvent.FAIL: JoyButton.FAIL,
    TeleopEvent.DISCARD: JoyButton.DISCARD,
}


def make_device(
    kind: str,
    *,
    episodes: int,
    hidraw: str,
    script_s: tuple[float, float, float] = (1.5, 1.0, 1.5),
    spacemouse_buttons: str = "intervene",
) -> TeleopDevice:
    if kind == "scripted":
        from robot_learning.hardware.scripted_teleop import ScriptedTeleop

        return ScriptedTeleop(episodes=episodes)
    if kind == "scripted_intervention":
        from robot_learning.runtime.scripted_intervention import ScriptedIntervention

        policy_s, intervene_s, after_s = script_s
        return ScriptedIntervention(
            episodes=episodes, policy_s=policy_s, intervene_s=intervene_s, after_s=after_s
        )
    if kind == "spacemouse":
        from robot_learning.hardware.spacemouse import SpaceMouse, button_map

        return SpaceMouse(device=hidraw or None, config=button_map(spacemouse_buttons))
    if kind == "keyboard":
        from robot_learning.hardware.keyboard import KeyboardTeleop

        return KeyboardTeleop()
    raise ValueError(
        f"teleop_node: parameter device must be scripted, scripted_intervention, "
        f"spacemouse or keyboard, got {kind!r}"
    )


class TeleopNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        kind = p("device", "spacemouse", "scripted, scripted_intervention, spacemouse or keyboard")
        rate_hz = p("rate_hz", 50.0, "how often the device is read and commands sent, Hz")
        episodes = p("episodes", 3, "scripted device: how many episodes to play")
        hidraw = p("hidraw", "", "spacemouse device path (empty: find it)")
        buttons = p(
            "spacemouse_buttons",
            "intervene",
            "spacemouse button map: intervene "
            "(deployment: right held = take over) or episode (collection: right tap "
            "START, right held FAIL); left: tap gripper, held SUCCESS",
        )
        script_s = (
            p("policy_s", 1.5, "scripted_intervention: hands off after START, s"),
            p("intervene_s", 1.0, "scripted_intervention: intervene button held, s"),
            p("after_s", 1.5, "scripted_intervention: hands off before SUCCESS, s"),
        )
        self.publish_target = p(
            "publish_target", True, "integrate the twist into /franka/target_pose commands"
        )
        self.wait_for_robot = p(
            "wait_for_robot",
            True,
            "start reading the device only once /franka/ee_pose has arrived "
            "(false for graphs without a robot: human capture)",
        )
        self.wait_for_recorder = p(
            "wait_for_recorder",
            kind.startswith("scripted"),
            "start reading the device only once /recorder/status says "
            "ready (a scripted operator must not press START too early)",
        )
        self.node = node
        self.device = make_device(
            kind, episodes=episodes, hidraw=hidraw, script_s=script_s, spacemouse_buttons=buttons
        )
        self._recorder_ready = False
        node.on_shutdown(self.device.disconnect)
        self.integrator = TwistIntegrator()
        self.period_s = 1.0 / rate_hz
        self.engaged = False
        self._pose: msgs.PoseStamped | None = None
        self._twist = node.create_publisher(msgs.TwistStamped, topics.TWIST, SENSOR_DATA)
        self._joy = node.create_publisher(msgs.Joy, topics.JOY, DEFAULT)
        # Without publish_target no command writer exists at all: the robot bridge's guard
        # counts matched writers, so an idle one would already be a second publisher.
        self._target = self._gripper = None
        if self.publish_target:
            self._target = node.create_publisher(msgs.PoseStamped, topics.TARGET_POSE, DEFAULT)
            self._gripper = node.create_publisher(msgs.JointState, topics.GRIPPER_COMMAND, DEFAULT)
        node.create_subscription(msgs.PoseStamped, topics.EE_POSE, self._on_pose, DEFAULT)
        node.create_subscription(msgs.String, topics.RECORDER_STATUS, self._on_recorder, LATCHED)
        node.create_subscription(msgs.String, topics.RECORDER_COMMAND, self._on_command, DEFAULT)
        self._connected = False
        node.create_timer(self.period_s, self._tick)
        node.log.info("teleop from %s at %.0f Hz", kind, rate_hz)

    def _on_pose(self, msg: msgs.PoseStamped) -> None:
        self._pose = msg

    def _on_recorder(self, msg: msgs.String) -> None:
        self._recorder_ready = bool(json.loads(msg.data).get("ready"))

    def _on_command(self, msg: msgs.String) -> None:
        """Episodes started or ended on the topic, as the recorder follows them."""
        word = command_word(msg)
        if word == "start" and not self.engaged:
            self._engage(f"{topics.RECORDER_COMMAND} start")
        elif word in END_WORDS and self.engaged:
            self.engaged = False
            self.node.log.info("episode ended (%s %s): targets stop", topics.RECORDER_COMMAND, word)

    def _engage(self, why: str) -> None:
        """Targets from now on, integrated from the measured pose (nothing jumps)."""
        state = self._measured()
        if state is None:
            self.node.log.warning("%s but no %s yet: is the robot node up?", why, topics.EE_POSE)
            return
        self.integrator.reset(state)
        self.engaged = True
        self.node.log.info("episode started (%s): sending targets", why)

    def _measured(self) -> RobotState | None:
        if self._pose is None:
            return None
        v = convert.pose_vector(self._pose)
        return RobotState(convert.stamp_s(self._pose), np.zeros(7), np.zeros(7), v[:3], v[3:], 0.0)

    def _tick(self) -> None:
        if not self._connected:
            if (self.wait_for_robot and self._pose is None) or (
                self.wait_for_recorder and not self._recorder_ready
            ):
                return
            self.device.connect()
            self._connected = True
            self.node.log.info(
                "teleop starts (robot %s, recorder %s)",
                "up" if self._pose is not None else "not awaited",
                "ready" if self._recorder_ready else "not awaited",
            )
        command = self.device.read()
        stamp = self.node.now_s()
        self._twist.publish(convert.twist_stamped(command.twist, stamp))
        buttons = [0] * JoyButton.COUNT
        buttons[JoyButton.GRIPPER] = int(command.gripper_closed)
        buttons[JoyButton.INTERVENE] = int(command.intervene)
        for event in command.events:
            buttons[EVENT_BUTTONS[event]] = 1
        self._joy.publish(
            msgs.Joy(
                header=convert.header(stamp, ""),
                axes=[float(x) for x in command.twist],
                buttons=buttons,
            )
        )
        if TeleopEvent.START in command.events:
            self._engage("START pressed")
        if any(e in command.events for e in END_EVENTS):
            self.engaged = False
        state = self._measured()
        if (
            self.engaged
            and self._target is not None
            and self._gripper is not None
            and state is not None
        ):
            target = self.integrator.step(command, self.period_s, state=state)
            self._target.publish(convert.pose_stamped(target.position, target.quaternion, stamp))
            self._gripper.publish(convert.gripper_command(target.gripper_closed, stamp))


def main(argv: list[str] | None = None) -> int:
    return run_node("teleop_node", TeleopNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
