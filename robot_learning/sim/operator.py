"""A simulated operator for intervention tests, benchmarks and the demo.

It watches the arm the way a person at the SpaceMouse would: it knows what the task's
scripted expert would do now (the expert plans from the true simulator state, so it tracks
the progress the policy made), and when the hand heads elsewhere for ``drift_for_s``, or the
gripper stays in the wrong state, or nothing progresses for ``stuck_for_s``, it presses the
intervene button and drives the expert's twist through the same teleop path a SpaceMouse
takes. After ``correct_for_s`` of correcting, once the expert's own motion is calm, it lets go.

Drift is motion *off* the expert's direction (sideways or backwards, in translation and in
rotation), or hardly any motion where the expert would move; not a different speed along
it: a person does not grab the SpaceMouse because the arm approaches more slowly, or turns
the hand later, than they would have. Measured with a speed-sensitive rule
(``|v - v_expert|``), the operator took over in every episode of a 72% policy within 0.6 s,
over the hand's rotation rate alone.

Not a model of a human's reaction time beyond ``drift_for_s``; that is the knob.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_learning.geometry import quat_conjugate, quat_multiply_xyzw, rotvec_from_quat_xyzw
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice
from robot_learning.sim.experts import ScriptedExpert
from robot_learning.sim.robot import SimRobot
from robot_learning.sim.scene import GRIPPER_MAX_WIDTH_M


@dataclass(frozen=True)
class OperatorConfig:
    drift_m_s: float = 0.08  # hand speed off the expert's direction counted as drift
    drift_for_s: float = 0.6  # sustained this long before taking over
    drift_min_m_s: float = 0.05  # direction is judged only while the expert moves this fast
    stalled_fraction: float = 0.2  # slower than this share of the expert's speed: not moving
    gripper_wrong_for_s: float = 0.8  # open when it should hold, or closed on nothing
    empty_width_m: float = 0.01  # a closed gripper narrower than this holds nothing
    correct_for_s: float = 1.5  # correct at least this long once in control
    calm_m_s: float = 0.05  # let go only while the expert's own twist is below this
    stuck_for_s: float = 5.0  # no progress (the expert's phase unchanged) this long: take over
    angular_m: float = 0.1  # rad/s count as the speed of a point this far from the axis


class SimulatedOperator(TeleopDevice):
    """A TeleopDevice that is idle until the policy drifts, then corrects with the expert."""

    def __init__(
        self, expert: ScriptedExpert, robot: SimRobot, config: OperatorConfig | None = None
    ) -> None:
        self.expert = expert
        self.robot = robot
        self.config = config or OperatorConfig()
        self.active = False
        self.takeovers = 0
        self.reasons: list[str] = []  # why each takeover happened: drift, gripper or stuck
        self._drift_since: float | None = None
        self._gripper_wrong_since: float | None = None
        self._active_since = 0.0
        self._last: tuple[float, np.ndarray] | None = None  # time, pose (7,)
        self._phase = ""
        self._phase_since = 0.0
        self._phase_at_takeover = ""

    def read(self) -> TeleopCommand:
        cfg = self.config
        state = self.robot.read_state()
        now = state.timestamp_s
        wanted = self.expert.read()
        if self.expert.phase != self._phase:  # progress, by the expert's own reckoning
            self._phase, self._phase_since = self.expert.phase, now
        velocity = np.zeros(6)
        if self._last is not None and now > self._last[0]:
            dt = now - self._last[0]
            velocity[:3] = (state.ee_position - self._last[1][:3]) / dt
            # base-frame angular velocity: q_now = exp(w dt) * q_last
            delta = quat_multiply_xyzw(state.ee_quaternion, quat_conjugate(self._last[1][3:]))
            velocity[3:] = rotvec_from_quat_xyzw(delta) / dt
        self._last = (now, state.ee_pose_vector())

        if not self.active:
            drift = _off_course(velocity[:3], wanted.twist[:3]) + cfg.angular_m * _off_course(
                velocity[3:], wanted.twist[3:]
            )
            wanted_speed = _speed(wanted.twist, cfg.angular_m)
            stalled = _speed(velocity, cfg.angular_m) < cfg.stalled_fraction * wanted_speed
            drifting = wanted_speed >= cfg.drift_min_m_s and (drift > cfg.drift_m_s or stalled)
            self._drift_since = (
                (self._drift_since if self._drift_since is not None else now) if drifting else None
            )
            gripper_closed = state.gripper_width_m < 0.9 * GRIPPER_MAX_WIDTH_M
            # Closing a little before the expert would is fine if it closes on the object.
            wrong = (wanted.gripper_closed and not gripper_closed) or (
                gripper_closed
                and not wanted.gripper_closed
                and state.gripper_width_m < cfg.empty_width_m
            )
            self._gripper_wrong_since = (
                (self._gripper_wrong_since if self._gripper_wrong_since is not None else now)
                if wrong
                else None
            )
            reason = None
            if self._drift_since is not None and now - self._drift_since >= cfg.drift_for_s:
                reason = "drift"
            elif (
                self._gripper_wrong_since is not None
                and now - self._gripper_wrong_since >= cfg.gripper_wrong_for_s
            ):
                reason = "gripper"
            elif now - self._phase_since >= cfg.stuck_for_s:
                reason = "stuck"
            if reason is not None:
                self.active, self._active_since = True, now
                self._phase_at_takeover = self._phase
                self.takeovers += 1
                self.reasons.append(reason)
                self._drift_since = self._gripper_wrong_since = None
        elif (
            now - self._active_since >= cfg.correct_for_s
            and _speed(wanted.twist, cfg.angular_m) < cfg.calm_m_s
            and self._phase != self._phase_at_takeover
        ):  # let go once it got somewhere
            self.active = False
            self._phase_since = now

        if self.active:
            return TeleopCommand(
                now, wanted.twist, wanted.gripper_closed, intervene=True, events=wanted.events
            )
        return TeleopCommand(
            now, np.zeros(6), wanted.gripper_closed, intervene=False, events=wanted.events
        )


def _off_course(actual: np.ndarray, wanted: np.ndarray) -> float:
    """Speed of ``actual`` sideways of, or against, the direction ``wanted`` points in.

    Faster or slower along that direction is not off course. When the expert wants to stay
    put (``wanted`` ~ 0), any motion is.
    """
    norm = float(np.linalg.norm(wanted))
    if norm < 1e-6:
        return float(np.linalg.norm(actual))
    along = float(actual @ wanted) / norm
    sideways = actual - along * (wanted / norm)
    return float(np.linalg.norm(sideways)) + max(0.0, -along)


def _speed(twist: np.ndarray, angular_m: float) -> float:
    return float(np.linalg.norm(twist[:3]) + angular_m * np.linalg.norm(twist[3:]))
