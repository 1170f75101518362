"""Who commands the arm: a teleop device or a policy, behind one interface.

A controller is asked once per control tick for the target to send. The loop that asks
(lockstep in ``robot_learning.sim.rollout``, wall-clock pacing on a real arm) owns the clock;
controllers only read the time they are given, so the same controller runs under both.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent
from robot_learning.hardware.twist_integrator import TwistIntegrator
from robot_learning.runtime.executor import ChunkExecutor, ExecutionConfig
from robot_learning.runtime.observation import Observation, PolicyLike


@dataclass(frozen=True)
class Command:
    """One tick's decision: the target, and what the operator did (None for a policy)."""

    target: CartesianTarget
    teleop: TeleopCommand | None = None
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)


class Controller(ABC):
    """Produces one Cartesian target per control tick."""

    def begin(self, state: RobotState) -> None:  # noqa: B027 (optional hook)
        """A new episode starts from ``state``."""

    def end(self) -> None:  # noqa: B027 (optional hook)
        """The episode is over."""

    @abstractmethod
    def command(self, state: RobotState, period_s: float) -> Command:
        """The target for the tick starting at ``state.timestamp_s``."""


class TeleopController(Controller):
    """A SpaceMouse, keyboard or scripted expert: twist -> TwistIntegrator -> target."""

    def __init__(self, device: TeleopDevice) -> None:
        self.device = device
        self.integrator = TwistIntegrator()

    def begin(self, state: RobotState) -> None:
        self.device.connect()
        self.integrator.reset(state)

    def end(self) -> None:
        self.device.disconnect()

    def command(self, state: RobotState, period_s: float) -> Command:
        reading = self.device.read()
        target = self.integrator.step(reading, period_s, state=state)
        return Command(target, reading, reading.events)


ObservationSource = Callable[[RobotState], Observation]


class PolicyController(Controller):
    """A policy's chunks, executed by a ChunkExecutor; queries the policy when due.

    ``observe`` assembles the observation for a state (cameras read at that moment). The
    wall time of every ``policy.act`` call is kept in ``latencies_s``.
    """

    def __init__(
        self,
        policy: PolicyLike,
        observe: ObservationSource,
        execution: ExecutionConfig,
        *,
        on_observation: Callable[[Observation], None] | None = None,
    ) -> None:
        self.policy = policy
        self.observe = observe
        self.executor = ChunkExecutor(execution)
        self.on_observation = on_observation
        self.latencies_s: list[float] = []
        self._next_history_s: float | None = None

    def begin(self, state: RobotState) -> None:
        self.policy.reset()
        self.executor.reset()
        self._next_history_s: float | None = None

    def command(self, state: RobotState, period_s: float) -> Command:
        now = state.timestamp_s
        history_period = getattr(self.policy, "observation_period_s", None)
        history_due = history_period is not None and (
            self._next_history_s is None or now >= self._next_history_s - period_s / 2)
        if self.executor.needs_chunk(now):
            observation = self._observe(state)
            started = time.perf_counter()
            chunk = self.policy.act(observation)
            self.latencies_s.append(time.perf_counter() - started)
            self.executor.add(chunk)
        elif history_due:
            self.policy.observe(self._observe(state))
        else:
            return Command(self.executor.target(now))
        if history_period is not None:  # the policy just saw this moment
            self._next_history_s = now + history_period
        return Command(self.executor.target(now))

    def _observe(self, state: RobotState) -> Observation:
        observation = self.observe(state)
        if self.on_observation is not None:
            self.on_observation(observation)
        return observation

    def latency_ms(self) -> dict[str, float]:
        """p50/p99/max of the policy calls so far, in milliseconds."""
        if not self.latencies_s:
            return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
        ms = np.asarray(self.latencies_s) * 1e3
        return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                "max": float(ms.max())}
