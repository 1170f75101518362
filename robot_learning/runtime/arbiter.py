"""Who is in control this tick: the policy, the human, or nobody (hold).

The operator takes over by pressing the intervene button or simply by moving the SpaceMouse
past a threshold, and is in control on that same tick: the human's target starts from the
measured pose, so the takeover itself does not move the arm. When the button is released
and the device has been still for ``release_after_s``, control goes back to the policy,
which has kept running in the background and is re-anchored to the current pose (it holds
until a chunk predicted from a fresh observation arrives), so the hand-back never jumps to
a stale plan. Every tick says who was in control and carries both actions for the recorder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from robot_learning.hardware.robot import RobotState
from robot_learning.hardware.teleop import TeleopDevice
from robot_learning.hardware.twist_integrator import TwistIntegrator
from robot_learning.limits import RobotLimits
from robot_learning.runtime.controllers import (
    AsyncPolicyController,
    Command,
    Controller,
    ControlSource,
    PolicyController,
)


@dataclass(frozen=True)
class ArbiterConfig:
    # Twist that counts as the operator moving: m/s, with rad/s weighted by ``angular_m``
    # (a rotation of 1 rad/s moves a point 0.1 m from the axis at 0.1 m/s).
    takeover_speed_m_s: float = 0.03
    angular_m: float = 0.1
    takeover_on_motion: bool = True  # False: only the intervene button takes over
    release_after_s: float = 0.5  # still and button up for this long: hand back

    def __post_init__(self) -> None:
        if self.takeover_speed_m_s <= 0 or self.release_after_s < 0 or self.angular_m <= 0:
            raise ValueError(f"ArbiterConfig needs positive thresholds, got {self}")


@dataclass(frozen=True)
class Takeover:
    """One intervention: when it started and ended (station clock), in ticks too."""

    start_s: float
    start_tick: int
    end_s: float | None = None
    end_tick: int | None = None


class InterventionArbiter(Controller):
    """A policy in control until the operator takes over; both always computed."""

    def __init__(
        self,
        policy: AsyncPolicyController | PolicyController,
        device: TeleopDevice,
        config: ArbiterConfig | None = None,
        *,
        limits: RobotLimits | None = None,
        integrator: TwistIntegrator | None = None,
    ) -> None:
        """``limits``: the robot's limits file the operator's twist is integrated under."""
        self.policy = policy
        self.device = device
        self.config = config or ArbiterConfig()
        self.integrator = integrator or TwistIntegrator(limits=limits)
        self.source = ControlSource.POLICY
        self.takeovers: list[Takeover] = []
        self._tick = 0
        self._still_since: float | None = None

    def begin(self, state: RobotState) -> None:
        self.device.connect()
        self.policy.begin(state)
        self.integrator.reset(state)
        self.source = ControlSource.POLICY
        self.takeovers = []
        self._tick = 0
        self._still_since = None

    def end(self) -> None:
        self.policy.end()
        self.device.disconnect()  # a takeover still open at the end keeps end_s None

    @property
    def stalled_for_s(self) -> float:
        """The policy's stall only matters while it is in control."""
        return self.policy.stalled_for_s if self.source == ControlSource.POLICY else 0.0

    def command(self, state: RobotState, period_s: float) -> Command:
        now = state.timestamp_s
        reading = self.device.read()
        twist = np.asarray(reading.twist, dtype=np.float64)
        speed = float(np.linalg.norm(twist[:3]) + self.config.angular_m * np.linalg.norm(twist[3:]))
        moving = self.config.takeover_on_motion and speed > self.config.takeover_speed_m_s
        wants_control = reading.intervene or moving

        if self.source != ControlSource.HUMAN and wants_control:
            self.source = ControlSource.HUMAN
            self.integrator.reset(state)  # from the measured pose: the takeover never jumps
            self.takeovers.append(Takeover(now, self._tick))
            self._still_since = None
        elif self.source == ControlSource.HUMAN:
            if wants_control:
                self._still_since = None
            else:
                self._still_since = now if self._still_since is None else self._still_since
                if now - self._still_since >= self.config.release_after_s - 1e-9:
                    self.source = ControlSource.POLICY
                    self.policy.reanchor()
                    last = self.takeovers[-1]
                    self.takeovers[-1] = dataclasses.replace(last, end_s=now, end_tick=self._tick)
        self._tick += 1
        policy_command = self.policy.command(state, period_s)  # runs on, in the background

        human_target = self.integrator.step(reading, period_s, state=state)
        human_target = dataclasses.replace(human_target, timestamp_s=now)
        if self.source == ControlSource.HUMAN:
            return Command(
                human_target,
                reading,
                reading.events,
                source=ControlSource.HUMAN,
                policy_target=policy_command.target,
                human_target=human_target,
            )
        self.integrator.reset(state)  # the human's target follows the arm while idle
        source = ControlSource.HOLD if policy_command.holding else ControlSource.POLICY
        return Command(
            policy_command.target,
            reading,
            reading.events,
            holding=policy_command.holding,
            source=source,
            policy_target=policy_command.target,
            human_target=human_target,
        )


__all__ = ["ArbiterConfig", "ControlSource", "InterventionArbiter", "Takeover"]
