"""A simulated operator for intervention tests, benchmarks and the demo.

It watches the arm the way a person at the SpaceMouse would: it knows what the task's
scripted expert would do now (the expert plans from the true simulator state, so it tracks
the progress the policy made), and when the hand moves unlike that for ``drift_for_s``, or
the gripper stays in the wrong state, it presses the intervene button and drives the
expert's twist through the same teleop path a SpaceMouse takes. After ``correct_for_s`` of
correcting, once the expert's own motion is calm, it lets go.

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
    drift_m_s: float = 0.08  # |hand velocity - expert's intended velocity| counted as drift
    drift_for_s: float = 0.6  # sustained this long before taking over
    gripper_wrong_for_s: float = 0.8  # gripper opposite to the expert's for this long
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
            drifting = _speed(velocity - wanted.twist, cfg.angular_m) > cfg.drift_m_s
            self._drift_since = (
                (self._drift_since if self._drift_since is not None else now) if drifting else None
            )
            gripper_closed = state.gripper_width_m < 0.9 * GRIPPER_MAX_WIDTH_M
            wrong = gripper_closed != wanted.gripper_closed
            self._gripper_wrong_since = (
                (self._gripper_wrong_since if self._gripper_wrong_since is not None else now)
                if wrong
                else None
            )
            if (
                (self._drift_since is not None and now - self._drift_since >= cfg.drift_for_s)
                or (
                    self._gripper_wrong_since is not None
                    and now - self._gripper_wrong_since >= cfg.gripper_wrong_for_s
                )
                or now - self._phase_since >= cfg.stuck_for_s
            ):
                self.active, self._active_since = True, now
                self._phase_at_takeover = self._phase
                self.takeovers += 1
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


def _speed(twist: np.ndarray, angular_m: float) -> float:
    return float(np.linalg.norm(twist[:3]) + angular_m * np.linalg.norm(twist[3:]))
