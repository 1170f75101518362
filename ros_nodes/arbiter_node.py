"""arbiter_node: the deployment's control loop, and the one command publisher of the arm.

At ``control_hz`` it asks the intervention arbiter (``robot_learning.runtime.arbiter``) who
commands this tick: the policy, whose chunks arrive from policy_node on ``/policy/chunk`` +
``/policy/chunk_gripper`` and are played by absolute time (``ChunkStreamController``:
latency compensation), or the operator, whose ``/spacenav/twist_stamped`` and
``/spacenav/joy`` (intervene button) take over on the same tick. Every command passes the
safety filter (limits file, watchdog: a measured pose or command older than the limits allow
holds the arm, counted as ``stale_observation``/``stale_command``; lead bound, deadman,
emergency stop) and goes out on
``/franka/target_pose`` + ``/franka_gripper/command``: teleop_node must run with
``publish_target:=false`` so that the robot bridge's command guard sees one publisher.

Episodes follow the operator's Joy buttons (or ``/recorder/command``), as the recorder and
the sim do: START begins one (policy in control, re-planning from the measured pose), SUCCESS,
FAIL or DISCARD end it; between episodes nothing is commanded. ``/arbiter/emergency_stop``
(Bool) latches a hold until ``false`` is published. A policy that stops sending chunks (its
node killed or hung, a stalled camera, a checkpoint for other cameras) makes the arm hold and
is reported as the status ``fault``. ``/arbiter/status`` (JSON, every tick while an episode
runs): source, the policy's and the human's action (with the chunk it was read from and when),
the command sent, takeovers, safety counts and events: what the recorder stores per step.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.limits import load_limits
from robot_learning.runtime.arbiter import ArbiterConfig, InterventionArbiter
from robot_learning.runtime.controllers import Command, ControlSource
from robot_learning.runtime.executor import ExecutionConfig
from robot_learning.runtime.safety import SafetyFilter
from robot_learning.runtime.streams import ChunkStreamController, StreamedTeleop
from ros_nodes import convert, msgs, topics
from ros_nodes.runtime import DEFAULT, LATCHED, SENSOR_DATA, Node, run_node
from ros_nodes.topics import JoyButton

END_WORDS = ("success", "fail", "discard")
END_BUTTONS = {JoyButton.SUCCESS: "success", JoyButton.FAIL: "fail", JoyButton.DISCARD: "discard"}


class ArbiterNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        control_hz = p("control_hz", 100.0, "control loop rate, Hz")
        limits = p("limits", "fr3", "robot limits: fr3, fr3_sim or a YAML limits file")
        self.arbiter_config = ArbiterConfig(
            takeover_speed_m_s=p("takeover_speed_m_s", 0.03, "twist (m/s) that takes over"),
            takeover_on_motion=p(
                "takeover_on_motion",
                True,
                "moving the device takes over (false: only the intervene button)",
            ),
            release_after_s=p(
                "release_after_s",
                0.5,
                "button up and device still this long: the policy gets control back, s",
            ),
        )
        self.latency_compensation = p(
            "latency_compensation",
            True,
            "play chunks by the time they were predicted for (false: from arrival)",
        )
        self.policy_timeout_s = p(
            "policy_timeout_s",
            1.0,
            "hold when no chunk arrived this long after a re-plan was due, s",
        )
        self.intervene_button = p(
            "intervene_button", JoyButton.INTERVENE, "Joy button that takes over while held"
        )
        self.deadman_button = p(
            "deadman_button",
            -1,
            "Joy button the policy needs held to move the arm (-1: no deadman)",
        )
        self.estop_button = p(
            "estop_button",
            -1,
            "Joy button that latches the emergency stop (-1: none; the topic works always)",
        )
        self._check_buttons()
        self.node = node
        self.period_s = 1.0 / control_hz
        self.safety = SafetyFilter(
            load_limits(limits), self.period_s, require_deadman=self.deadman_button >= 0
        )
        self.device = StreamedTeleop(clock=node.now_s)
        self.policy: ChunkStreamController | None = None  # once /policy/status says how
        self.arbiter: InterventionArbiter | None = None
        self.policy_status: dict[str, Any] = {}
        self.active = False
        self.episode = 0
        self.fault: str | None = None
        self.deadman_held = False
        self._pose: msgs.PoseStamped | None = None
        self._finger_width_m = 0.0
        self._joy: list[int] = []
        self._pending: dict[tuple[int, int], dict[str, Any]] = {}
        self._tick_count = 0
        self._target = node.create_publisher(msgs.PoseStamped, topics.TARGET_POSE, DEFAULT)
        self._gripper = node.create_publisher(msgs.JointState, topics.GRIPPER_COMMAND, DEFAULT)
        self._status = node.create_publisher(msgs.String, topics.ARBITER_STATUS, DEFAULT)
        node.create_subscription(msgs.PoseStamped, topics.EE_POSE, self._on_pose, DEFAULT)
        node.create_subscription(
            msgs.JointState, topics.GRIPPER_JOINT_STATES, self._on_fingers, DEFAULT
        )
        node.create_subscription(msgs.TwistStamped, topics.TWIST, self._on_twist, SENSOR_DATA)
        node.create_subscription(msgs.Joy, topics.JOY, self._on_joy, DEFAULT)
        node.create_subscription(msgs.String, topics.RECORDER_COMMAND, self._on_command, DEFAULT)
        node.create_subscription(msgs.String, topics.POLICY_STATUS, self._on_policy_status, LATCHED)
        node.create_subscription(
            msgs.MultiDOFJointTrajectory,
            topics.POLICY_CHUNK,
            lambda m: self._on_chunk_part("poses", m),
            DEFAULT,
        )
        node.create_subscription(
            msgs.JointTrajectory,
            topics.POLICY_CHUNK_GRIPPER,
            lambda m: self._on_chunk_part("fingers", m),
            DEFAULT,
        )
        node.create_subscription(msgs.Bool, topics.EMERGENCY_STOP, self._on_estop, DEFAULT)
        node.create_timer(self.period_s, self._tick)
        node.on_shutdown(self._stop)
        node.log.info(
            "arbiter at %.0f Hz, limits %s, deadman %s",
            control_hz,
            self.safety.limits.source,
            "on" if self.deadman_button >= 0 else "off",
        )

    def _check_buttons(self) -> None:
        """One Joy button, one meaning; and some way for the operator to take over."""
        roles = {
            "intervene_button": self.intervene_button,
            "deadman_button": self.deadman_button,
            "estop_button": self.estop_button,
        }
        used = [(name, b) for name, b in roles.items() if b >= 0]
        for i, (name, button) in enumerate(used):
            for other, other_button in used[i + 1 :]:
                if button == other_button:
                    raise ValueError(
                        f"arbiter_node: {name} and {other} are both {button}; one button cannot "
                        f"mean both (a two-button SpaceMouse: deadman_button:=1 "
                        f"intervene_button:=-1, moving the cap takes over)"
                    )
        if self.intervene_button < 0 and not self.arbiter_config.takeover_on_motion:
            raise ValueError(
                "arbiter_node: intervene_button is -1 and takeover_on_motion is "
                "false: the operator could never take over"
            )

    # -- inputs --------------------------------------------------------------------------
    def _on_pose(self, msg: msgs.PoseStamped) -> None:
        self._pose = msg

    def _on_fingers(self, msg: msgs.JointState) -> None:
        self._finger_width_m = float(sum(msg.position))

    def _on_twist(self, msg: msgs.TwistStamped) -> None:
        self.device.update_twist(convert.twist_vector(msg), convert.stamp_s(msg))

    def _on_joy(self, msg: msgs.Joy) -> None:
        buttons = list(msg.buttons)
        previous = self._joy or [0] * len(buttons)
        self._joy = buttons

        def held(i: int) -> bool:
            return 0 <= i < len(buttons) and bool(buttons[i])

        def pressed(i: int) -> bool:
            return held(i) and not (i < len(previous) and previous[i])

        self.device.update_buttons(
            gripper_closed=held(JoyButton.GRIPPER), intervene=held(self.intervene_button)
        )
        self.deadman_held = held(self.deadman_button)
        if self.estop_button >= 0 and pressed(self.estop_button):
            self.safety.emergency_stop(f"joy button {self.estop_button} on {topics.JOY}")
        if pressed(JoyButton.START):
            self._begin("joy START")
        for button, word in END_BUTTONS.items():
            if pressed(button):
                self._end(f"joy {word.upper()}")

    def _on_command(self, msg: msgs.String) -> None:
        word = msg.data.strip().lower()
        if word == "start":
            self._begin(f"{topics.RECORDER_COMMAND} start")
        elif word in END_WORDS:
            self._end(f"{topics.RECORDER_COMMAND} {word}")

    def _on_estop(self, msg: msgs.Bool) -> None:
        if msg.data:
            self.safety.emergency_stop(f"{topics.EMERGENCY_STOP} true")
        else:
            self.safety.release_emergency_stop()

    def _on_policy_status(self, msg: msgs.String) -> None:
        status = json.loads(msg.data)
        self.policy_status = status
        if self.policy is not None or not status.get("ready"):
            return
        execution = ExecutionConfig(
            **status["execution"], latency_compensation=self.latency_compensation
        )
        self.policy = ChunkStreamController(
            execution,
            clock=self.node.now_s,
            silence_s=float(status["replan_period_s"]) + self.policy_timeout_s,
        )
        self.arbiter = InterventionArbiter(self.policy, self.device, self.arbiter_config)  # type: ignore[arg-type]
        self.node.log.info("policy %s: %s", status.get("checkpoint"), status["execution"])

    def _on_chunk_part(self, part: str, msg: Any) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        parts = self._pending.setdefault(key, {})
        parts[part] = msg
        if len(parts) < 2:
            return
        del self._pending[key]
        for old in [k for k in self._pending if k < key]:  # the other half never came
            del self._pending[old]
        try:
            chunk = convert.chunk_from_messages(parts["poses"], parts["fingers"])
        except ValueError as exc:
            self.node.log.error("bad chunk on %s: %s", topics.POLICY_CHUNK, exc)
            return
        if self.policy is not None and self.active:
            self.policy.push(chunk, received_s=self.node.now_s())

    # -- episodes ------------------------------------------------------------------------
    def _state(self) -> RobotState | None:
        if self._pose is None:
            return None
        v = convert.pose_vector(self._pose)
        return RobotState(
            convert.stamp_s(self._pose),
            np.zeros(7),
            np.zeros(7),
            v[:3],
            v[3:],
            self._finger_width_m,
        )

    @property
    def not_ready(self) -> str | None:
        """Why an episode cannot start now (None: it can)."""
        if self._pose is None:
            return f"no measured pose on {topics.EE_POSE} yet: is the robot node up?"
        if self.arbiter is None or not self.policy_status.get("ready"):
            error = self.policy_status.get("error")
            return (
                f"policy not ready ({topics.POLICY_STATUS}): {error or 'no policy_node status yet'}"
            )
        return None

    def _begin(self, why: str) -> None:
        state = self._state()
        if self.active:
            self.node.log.warning("%s during episode %d: ignored", why, self.episode)
            return
        if self.not_ready is not None or state is None or self.arbiter is None:
            self.node.log.error("cannot start an episode (%s): %s", why, self.not_ready)
            return
        self.episode += 1
        self.fault = None
        self.safety.reset(state)
        self.arbiter.begin(state)
        self.active = True
        self.node.log.info("episode %d: policy in control (%s)", self.episode, why)

    def _end(self, why: str) -> None:
        if not self.active or self.arbiter is None:
            return
        self.active = False
        self.arbiter.end()
        self.node.log.info(
            "episode %d over (%s): %d takeovers, safety %s",
            self.episode,
            why,
            len(self.arbiter.takeovers),
            self.safety.summary(),
        )
        self._publish_status(self.node.now_s())

    def _stop(self) -> None:
        if self.active:
            self._end("shutdown")

    # -- the control tick ----------------------------------------------------------------
    def _tick(self) -> None:
        self._tick_count += 1
        now = self.node.now_s()
        state = self._state()
        if not self.active or self.arbiter is None or state is None:
            if self._tick_count % 10 == 0:
                self._publish_status(now)
            return
        command = self.arbiter.command(state, self.period_s)
        if self.arbiter.stalled_for_s > 0 and not command.holding:
            self._report_fault(
                f"no chunk on {topics.POLICY_CHUNK} for "
                f"{self.policy.silence_s + self.arbiter.stalled_for_s:.1f} s "  # type: ignore[union-attr]
                f"(policy_node killed, hung or without frames: "
                f"{self.policy_status.get('error') or 'no error reported'}); "
                "holding"
            )
            hold = CartesianTarget.holding(state, timestamp_s=now)
            command = dataclasses.replace(
                command, target=hold, holding=True, source=ControlSource.HOLD
            )
        elif command.source == ControlSource.POLICY or command.source == ControlSource.HUMAN:
            self.fault = None
        if command.holding:
            sent = self.safety.hold(state, now)
        else:
            deadman = self.deadman_held or command.source == ControlSource.HUMAN
            sent = self.safety.filter(command.target, state, now, deadman_held=deadman)
        self._target.publish(
            convert.pose_stamped(sent.target.position, sent.target.quaternion, now)
        )
        self._gripper.publish(convert.gripper_command(sent.target.gripper_closed, now))
        self._publish_status(now, command, sent.target, [e.value for e in sent.events])

    def _report_fault(self, fault: str) -> None:
        if fault != self.fault:
            self.node.log.error("%s", fault)
        self.fault = fault

    def _publish_status(
        self,
        now: float,
        command: Command | None = None,
        sent: CartesianTarget | None = None,
        events: list[str] | None = None,
    ) -> None:
        source = command.source if command is not None else None
        arbiter, policy = self.arbiter, self.policy
        read = policy.last_read if policy and command else None
        status = {
            "stamp": now,
            "ready": self.not_ready is None,
            "error": self.not_ready,
            "active": self.active,
            "episode": self.episode,
            "source": None if source is None else source.name.lower(),
            "control_source": None if source is None else int(source),
            "policy_action": _vector(command.policy_target if command else None),
            "human_action": _vector(command.human_target if command else None),
            "sent": _vector(sent),
            "events": events or [],
            "takeovers": len(arbiter.takeovers) if arbiter else 0,
            "reanchors": policy.reanchors if policy else 0,
            "anchor_s": policy.anchor_s if policy and self.active else None,
            "chunks": policy.chunks if policy else 0,
            # observation stamp of the (newest) chunk policy_action was read from, and when
            "chunk_s": read[0] if read else None,
            "chunk_read_s": read[1] if read else None,
            # observation stamp -> arrival here, newest 50 chunks: the policy's share of the
            # camera-to-command latency (the executor skips what passed meanwhile)
            "chunk_age_ms_p50": float(np.median(policy.ages_s[-50:]) * 1e3)
            if policy and policy.ages_s
            else None,
            "safety": self.safety.summary(),
            "estop": self.safety.emergency_stopped,
            "fault": self.fault,
            "checkpoint": self.policy_status.get("checkpoint"),
            "checkpoint_sha256": self.policy_status.get("checkpoint_sha256"),
        }
        self._status.publish(msgs.String(data=json.dumps(status)))


def _vector(target: CartesianTarget | None) -> list[float] | None:
    return None if target is None else [float(x) for x in target.as_vector()]


def main(argv: list[str] | None = None) -> int:
    return run_node("arbiter_node", ArbiterNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
