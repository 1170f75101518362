"""The safety filter every Cartesian command passes on its way to the arm, whoever made it.

It sits between the arbiter (policy, human or hold) and ``Robot.send_cartesian_target`` and
is the last place a bad command can be stopped, so it trusts nothing upstream: non-finite
numbers, stale commands or observations, targets outside the box, too fast, accelerating too
hard, or leading the measured hand too far. Each correction is an event that is logged and
counted (``SafetyFilter.counts``), never silent, so a rollout report can say how often the
filter had to step in and why.

Holding means commanding the measured pose with the gripper unchanged: the arm stops where
it is. The speed and acceleration state restarts from there, so leaving a hold never jumps.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np

from robot_learning.geometry import quat_angle_rad, slerp_xyzw
from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.limits import RobotLimits

log = logging.getLogger(__name__)
# A command exactly at a limit (the teleop integrator clamps to the same file) is not an
# event: rounding must not turn into a correction.
_SLACK = 1.0 + 1e-6


class SafetyEvent(enum.Enum):
    """Why the filter changed or replaced a command."""

    NON_FINITE = "non_finite"  # NaN/inf in the command: held
    STALE_COMMAND = "stale_command"  # no command, or older than command_timeout_s: held
    STALE_OBSERVATION = "stale_observation"  # robot state older than observation_timeout_s
    DEADMAN_RELEASED = "deadman_released"  # deadman required and not held: held
    EMERGENCY_STOP = "emergency_stop"  # latched until released: held
    WORKSPACE = "workspace"  # target clamped into the box
    SPEED = "speed"  # step from the previous command shortened
    ACCELERATION = "acceleration"  # change of commanded velocity limited
    LEAD = "lead"  # target pulled back toward the measured pose
    GRIPPER_RATE = "gripper_rate"  # open/close toggled too soon: previous state kept

    @property
    def holds(self) -> bool:
        return self in _HOLDING


_HOLDING = frozenset(
    {
        SafetyEvent.NON_FINITE,
        SafetyEvent.STALE_COMMAND,
        SafetyEvent.STALE_OBSERVATION,
        SafetyEvent.DEADMAN_RELEASED,
        SafetyEvent.EMERGENCY_STOP,
    }
)


@dataclass(frozen=True)
class FilteredCommand:
    """What goes to the arm, and what the filter did to get it."""

    target: CartesianTarget
    events: tuple[SafetyEvent, ...] = ()

    @property
    def holding(self) -> bool:
        return any(e.holds for e in self.events)


class SafetyFilter:
    """Stateful per-tick filter; ``reset(state)`` at the start of every episode."""

    def __init__(
        self,
        limits: RobotLimits,
        control_period_s: float,
        *,
        require_deadman: bool = False,
        log_every_s: float = 1.0,
    ) -> None:
        if control_period_s <= 0:
            raise ValueError(f"control_period_s must be positive, got {control_period_s}")
        self.limits = limits
        # Speeds are per control tick of the nominal period: the arm tracks one target a
        # tick, and a jittery wall clock must not loosen (or tighten) the limits.
        self.period_s = control_period_s
        self.require_deadman = require_deadman
        self.counts: Counter[SafetyEvent] = Counter()
        self._log_every_s = log_every_s
        self._last_logged: dict[SafetyEvent, float] = {}
        self._estop_reason: str | None = None
        self._previous: CartesianTarget | None = None
        self._velocity = np.zeros(3)
        self._angular_speed = 0.0
        self._gripper_switched_at = -np.inf

    # -- episode and emergency stop -------------------------------------------------------

    def reset(self, state: RobotState, *, gripper_closed: bool = False) -> None:
        """Start from the measured pose at rest; keeps an emergency stop latched."""
        self._previous = CartesianTarget.holding(state, gripper_closed=gripper_closed)
        self._velocity = np.zeros(3)
        self._angular_speed = 0.0
        self._gripper_switched_at = -np.inf

    def emergency_stop(self, reason: str) -> None:
        """Latch a hold (button, topic, operator): only ``release_emergency_stop`` clears it."""
        if self._estop_reason is None:
            log.error("emergency stop: %s (arm holds until released)", reason)
        self._estop_reason = reason

    def release_emergency_stop(self) -> None:
        if self._estop_reason is not None:
            log.warning("emergency stop released (was: %s)", self._estop_reason)
        self._estop_reason = None

    @property
    def emergency_stopped(self) -> str | None:
        return self._estop_reason

    # -- the filter -----------------------------------------------------------------------

    def filter(
        self,
        command: CartesianTarget | None,
        state: RobotState,
        now_s: float,
        *,
        deadman_held: bool = True,
    ) -> FilteredCommand:
        """The target to send at ``now_s`` (station clock) given the measured ``state``."""
        if self._previous is None:
            self.reset(state)
        assert self._previous is not None
        lim = self.limits
        dt = self.period_s
        gripper_now = self._previous.gripper_closed

        hold_reason = self._hold_reason(command, state, now_s, deadman_held)
        if hold_reason is not None:
            return self._hold(state, gripper_now, now_s, hold_reason)
        assert command is not None
        events: list[SafetyEvent] = []

        # Gripper: a toggle sooner than the minimum interval keeps the previous state.
        gripper = command.gripper_closed
        if gripper != gripper_now:
            if now_s - self._gripper_switched_at < lim.gripper_min_switch_interval_s:
                gripper = gripper_now
                events.append(SafetyEvent.GRIPPER_RATE)
            else:
                self._gripper_switched_at = now_s

        quaternion = np.asarray(command.quaternion, dtype=np.float64)
        quaternion = quaternion / np.linalg.norm(quaternion)
        position = np.asarray(command.position, dtype=np.float64)

        position, clamped = _clamp_box(position, lim.workspace_min_m, lim.workspace_max_m)
        if clamped:
            events.append(SafetyEvent.WORKSPACE)

        # Translation: acceleration bounds the change of velocity, speed bounds its size.
        previous_position = np.asarray(self._previous.position)
        velocity = (position - previous_position) / dt
        change = velocity - self._velocity
        if np.linalg.norm(change) > lim.max_linear_accel_m_s2 * dt * _SLACK:
            velocity = self._velocity + _clip_norm(change, lim.max_linear_accel_m_s2 * dt)
            events.append(SafetyEvent.ACCELERATION)
        if np.linalg.norm(velocity) > lim.max_linear_speed_m_s * _SLACK:
            velocity = _clip_norm(velocity, lim.max_linear_speed_m_s)
            events.append(SafetyEvent.SPEED)
        position = previous_position + velocity * dt

        # Rotation: the same on the angle along the shortest arc.
        previous_quaternion = np.asarray(self._previous.quaternion)
        angle = quat_angle_rad(previous_quaternion, quaternion)
        allowed = min(
            lim.max_angular_speed_rad_s * dt,
            (self._angular_speed + lim.max_angular_accel_rad_s2 * dt) * dt,
        )
        if angle > allowed * _SLACK + 1e-12:
            quaternion = slerp_xyzw(previous_quaternion, quaternion, allowed / angle)
            events.append(
                SafetyEvent.SPEED
                if allowed == lim.max_angular_speed_rad_s * dt
                else SafetyEvent.ACCELERATION
            )
            angle = allowed

        # Lead over the measured pose: the last word, so contact never builds up force.
        lead = position - state.ee_position
        if np.linalg.norm(lead) > lim.max_lead_m * _SLACK:
            position = state.ee_position + _clip_norm(lead, lim.max_lead_m)
            events.append(SafetyEvent.LEAD)
        measured_q = np.asarray(state.ee_quaternion, dtype=np.float64)
        lead_angle = quat_angle_rad(measured_q, quaternion)
        if lead_angle > lim.max_lead_rad * _SLACK:
            quaternion = slerp_xyzw(measured_q, quaternion, lim.max_lead_rad / lead_angle)
            events.append(SafetyEvent.LEAD)
        position, _ = _clamp_box(position, lim.workspace_min_m, lim.workspace_max_m)

        target = CartesianTarget(position, quaternion, gripper, command.timestamp_s)
        self._velocity = (position - previous_position) / dt
        self._angular_speed = quat_angle_rad(previous_quaternion, quaternion) / dt
        self._previous = target
        self._record(events, now_s)
        return FilteredCommand(target, tuple(dict.fromkeys(events)))

    def hold(self, state: RobotState, now_s: float) -> FilteredCommand:
        """Stay at the measured pose, gripper unchanged: a controller with nothing to say
        (waiting for a first chunk, a hung model). Not a filter event; the caller says why."""
        gripper = self._previous.gripper_closed if self._previous is not None else False
        target = CartesianTarget.holding(state, gripper_closed=gripper, timestamp_s=now_s)
        self._previous = target
        self._velocity = np.zeros(3)
        self._angular_speed = 0.0
        return FilteredCommand(target)

    # -- internals ------------------------------------------------------------------------

    def _hold_reason(
        self, command: CartesianTarget | None, state: RobotState, now_s: float, deadman_held: bool
    ) -> SafetyEvent | None:
        lim = self.limits
        if self._estop_reason is not None:
            return SafetyEvent.EMERGENCY_STOP
        if now_s - state.timestamp_s > lim.observation_timeout_s:
            return SafetyEvent.STALE_OBSERVATION
        if command is None or now_s - command.timestamp_s > lim.command_timeout_s:
            return SafetyEvent.STALE_COMMAND
        values = np.concatenate(
            [
                np.asarray(command.position, dtype=np.float64).ravel(),
                np.asarray(command.quaternion, dtype=np.float64).ravel(),
            ]
        )
        if (
            values.shape != (7,)
            or not np.isfinite(values).all()
            or np.linalg.norm(values[3:]) < 1e-6
        ):
            return SafetyEvent.NON_FINITE
        if self.require_deadman and not deadman_held:
            return SafetyEvent.DEADMAN_RELEASED
        return None

    def _hold(
        self, state: RobotState, gripper: bool, now_s: float, reason: SafetyEvent
    ) -> FilteredCommand:
        target = CartesianTarget.holding(state, gripper_closed=gripper, timestamp_s=now_s)
        self._previous = target
        self._velocity = np.zeros(3)
        self._angular_speed = 0.0
        self._record([reason], now_s)
        return FilteredCommand(target, (reason,))

    def _record(self, events: list[SafetyEvent], now_s: float) -> None:
        for event in dict.fromkeys(events):
            self.counts[event] += 1
            last = self._last_logged.get(event, -np.inf)
            if now_s - last >= self._log_every_s:  # one line a second per kind, not 100
                self._last_logged[event] = now_s
                level = logging.WARNING if event.holds else logging.INFO
                log.log(level, "safety filter: %s (%d so far)", event.value, self.counts[event])

    def summary(self) -> dict[str, int]:
        """Counts by event name, for reports and episode metadata."""
        return {
            event.value: n for event, n in sorted(self.counts.items(), key=lambda kv: kv[0].value)
        }


def _clamp_box(
    position: np.ndarray, lo: tuple[float, ...], hi: tuple[float, ...]
) -> tuple[np.ndarray, bool]:
    clamped = np.clip(position, lo, hi)
    return clamped, bool(np.any(clamped != position))


def _clip_norm(vector: np.ndarray, max_norm: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (max_norm / norm) if norm > max_norm else vector
