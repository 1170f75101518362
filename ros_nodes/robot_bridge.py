"""The robot side of the graph, shared by franka_node and sim_node: state out, commands in.

Publishes franka_ros2-shaped state (``/franka/joint_states``, ``/franka/ee_pose``,
``/franka_gripper/joint_states``) and takes ``/franka/target_pose`` (PoseStamped) and
``/franka_gripper/command`` (JointState finger targets) through the CommandGuard. Every
command the arm accepts is echoed on ``/franka/accepted_target`` and
``/franka_gripper/accepted_command`` with the command's own stamp: what the recorder stores
as the action, so a refused command never becomes one. ``/franka/status`` (latched JSON)
says whether the arm tracks, holds or is homing, and why. While it homes (``/franka/home``,
franka_node) every command is refused: the joint motion owns the arm until it ends.
"""

from __future__ import annotations

import json

from robot_learning.hardware.robot import CartesianTarget, RobotState
from ros_nodes import convert, msgs, topics
from ros_nodes.command_guard import CommandGuard
from ros_nodes.runtime import DEFAULT, LATCHED, Node

ACCEPTED_TARGET = "/franka/accepted_target"
ACCEPTED_GRIPPER = "/franka_gripper/accepted_command"


class RobotBridge:
    def __init__(self, node: Node, *, max_command_age_s: float) -> None:
        self.node = node
        self.target: CartesianTarget | None = None  # None: hold where the arm is
        self.gripper_closed = False
        self._joints = node.create_publisher(msgs.JointState, topics.JOINT_STATES, DEFAULT)
        self._pose = node.create_publisher(msgs.PoseStamped, topics.EE_POSE, DEFAULT)
        self._fingers = node.create_publisher(msgs.JointState, topics.GRIPPER_JOINT_STATES, DEFAULT)
        self._status = node.create_publisher(msgs.String, topics.ROBOT_STATUS, LATCHED)
        self._accepted_pose = node.create_publisher(msgs.PoseStamped, ACCEPTED_TARGET, DEFAULT)
        self._accepted_gripper = node.create_publisher(msgs.JointState, ACCEPTED_GRIPPER, DEFAULT)
        self._target_sub = node.create_subscription(
            msgs.PoseStamped, topics.TARGET_POSE, self._on_target, DEFAULT
        )
        self._gripper_sub = node.create_subscription(
            msgs.JointState, topics.GRIPPER_COMMAND, self._on_gripper, DEFAULT
        )
        self._guards = {
            sub.topic: CommandGuard(topic=sub.topic, max_age_s=max_command_age_s)
            for sub in (self._target_sub, self._gripper_sub)
        }
        self.hold_reason: str | None = None
        self.homing = False
        self.last_command_s = float("-inf")  # node time of the last command, taken or not
        self.accepted = 0
        self.refused = 0
        self._publish_status()

    # -- commands ------------------------------------------------------------------------
    def _guarded(self, sub: object, msg: object) -> bool:
        guard = self._guards[sub.topic]  # type: ignore[attr-defined]
        verdict = guard.check(sub.publishers(), convert.stamp_s(msg), self.node.now_s())  # type: ignore[attr-defined]
        if not verdict.accepted:
            self.refused += 1
            if self.hold_reason != verdict.error:
                self.node.log.error("arm on hold: %s", verdict.error)
                self.hold_reason = verdict.error
                self.target = None
                self._publish_status()
            return False
        if self.hold_reason is not None and all(
            g.hold_reason is None for g in self._guards.values()
        ):
            self.node.log.info("hold released: one publisher, fresh commands")
            self.hold_reason = None
            self._publish_status()
        return self.hold_reason is None

    def _refused_while_homing(self) -> bool:
        """Every command arriving is noted (``home_refusal`` reads it); while the arm homes
        it is refused and counted."""
        self.last_command_s = self.node.now_s()
        if self.homing:
            self.refused += 1
            return True
        return False

    def _on_target(self, msg: msgs.PoseStamped) -> None:
        if self._refused_while_homing() or not self._guarded(self._target_sub, msg):
            return
        self.target = convert.target_from_msgs(msg, self.gripper_closed)
        self.accepted += 1
        self._accepted_pose.publish(msg)

    def _on_gripper(self, msg: msgs.JointState) -> None:
        if self._refused_while_homing() or not self._guarded(self._gripper_sub, msg):
            return
        self.gripper_closed = convert.gripper_closed(msg)
        if self.target is not None:
            t = self.target
            self.target = CartesianTarget(
                t.position, t.quaternion, self.gripper_closed, t.timestamp_s
            )
        self._accepted_gripper.publish(msg)

    # -- homing --------------------------------------------------------------------------
    def home_refusal(self, quiet_s: float) -> str | None:
        """Why the arm may not go home now: it is homing, or someone is commanding it (a
        command came within ``quiet_s``, accepted or refused)."""
        if self.homing:
            return "the arm is already homing"
        since = self.node.now_s() - self.last_command_s
        if since < quiet_s:
            return (
                f"commands are flowing (the last {since:.2f} s ago): end the episode or "
                f"stop the command publisher first"
            )
        return None

    def begin_homing(self) -> None:
        """Forget the target (the gripper stays as it is) and refuse commands until
        ``end_homing``."""
        self.target = None
        self.homing = True
        self._publish_status()

    def end_homing(self, *, reached: bool) -> None:
        """Commands are taken again; a reached home also clears an earlier error's hold
        (a publisher that is still wrong puts the arm on hold again at its next command)."""
        self.homing = False
        if reached:
            self.hold_reason = None
        self._publish_status()

    def clear_target(self) -> None:
        """Forget the target (after a reset the arm holds home until a new command)."""
        self.target = None
        self.gripper_closed = False

    # -- state ---------------------------------------------------------------------------
    def publish_state(self, state: RobotState, stamp_s: float) -> None:
        self._joints.publish(convert.arm_joint_state(state, stamp_s))
        self._pose.publish(convert.pose_stamped(state.ee_position, state.ee_quaternion, stamp_s))
        self._fingers.publish(convert.gripper_joint_state(state.gripper_width_m, stamp_s))

    def report_error(self, error: str | None) -> None:
        """The robot's own error (reflex, connection), shown in the status."""
        if error != self.hold_reason:
            self.hold_reason = error
            if error:
                self.node.log.error("arm stopped: %s", error)
            self._publish_status()

    def _publish_status(self) -> None:
        state = "homing" if self.homing else "hold" if self.hold_reason else "tracking"
        self._status.publish(
            msgs.String(
                data=json.dumps(
                    {
                        "state": state,
                        "error": self.hold_reason,
                        "accepted": self.accepted,
                        "refused": self.refused,
                    }
                )
            )
        )
