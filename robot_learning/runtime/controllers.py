"""Who commands the arm: a teleop device or a policy, behind one interface.

A controller is asked once per control tick for the target to send. The loop that asks
(lockstep in ``robot_learning.sim.rollout``, wall-clock pacing on a real arm) owns the clock;
controllers only read the time they are given, so the same controller runs under both.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent
from robot_learning.hardware.twist_integrator import TwistIntegrator
from robot_learning.limits import RobotLimits
from robot_learning.runtime.executor import ChunkExecutor, ExecutionConfig
from robot_learning.runtime.inference import InferenceWorker
from robot_learning.runtime.observation import Observation, PolicyLike


class ControlSource(enum.IntEnum):
    """Who commanded a tick; stored per step as a small integer (``control_source``)."""

    POLICY = 0
    HUMAN = 1
    HOLD = 2


@dataclass(frozen=True)
class Command:
    """One tick's decision: the target, and what the operator did (None for a policy)."""

    target: CartesianTarget
    teleop: TeleopCommand | None = None
    events: frozenset[TeleopEvent] = field(default_factory=frozenset)
    holding: bool = False  # the controller has nothing to say yet: the target is "stay"
    source: ControlSource | None = None  # set by the intervention arbiter
    policy_target: CartesianTarget | None = None  # what the policy wanted (arbiter)
    human_target: CartesianTarget | None = None  # what the operator's device wanted (arbiter)


class Controller(ABC):
    """Produces one Cartesian target per control tick."""

    def begin(self, state: RobotState) -> None:  # noqa: B027 (optional hook)
        """A new episode starts from ``state``."""

    def end(self) -> None:  # noqa: B027 (optional hook)
        """The episode is over."""

    @abstractmethod
    def command(self, state: RobotState, period_s: float) -> Command:
        """The target for the tick starting at ``state.timestamp_s``."""

    @property
    def stalled_for_s(self) -> float:
        """How long a model behind this controller has been hung beyond its limit (0: not)."""
        return 0.0


class TeleopController(Controller):
    """A SpaceMouse, keyboard or scripted expert: twist -> TwistIntegrator -> target."""

    def __init__(self, device: TeleopDevice, *, limits: RobotLimits | None = None) -> None:
        self.device = device
        self.integrator = TwistIntegrator(limits=limits)

    def begin(self, state: RobotState) -> None:
        self.device.connect()
        self.integrator.reset(state)

    def end(self) -> None:
        self.device.disconnect()

    def command(self, state: RobotState, period_s: float) -> Command:
        reading = self.device.read()
        target = self.integrator.step(reading, period_s, state=state)
        # Stamped for the tick it was made for: a SpaceMouse at rest sends nothing, so the
        # reading's own time says nothing about whether this target is fresh.
        return Command(
            dataclasses.replace(target, timestamp_s=state.timestamp_s), reading, reading.events
        )


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
        self.reanchor()

    def reanchor(self) -> None:
        """Forget the current plan: the next tick queries the policy from a fresh observation."""
        self.executor.reset()
        self._next_history_s: float | None = None

    def command(self, state: RobotState, period_s: float) -> Command:
        now = state.timestamp_s
        history_period = getattr(self.policy, "observation_period_s", None)
        history_due = history_period is not None and (
            self._next_history_s is None or now >= self._next_history_s - period_s / 2
        )
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
        return {
            "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        }


class AsyncPolicyController(Controller):
    """A policy on its own thread: ``command`` never waits for the model.

    Until the first chunk arrives (and after ``reanchor``) it holds the measured pose. When
    a re-plan is due it submits the current observation and keeps playing the chunk it has;
    the new chunk replaces it by absolute time, so the steps whose time passed during
    inference are skipped (``ExecutionConfig.latency_compensation``). History observations
    go through the same worker, in order.
    """

    def __init__(
        self,
        policy: PolicyLike,
        observe: ObservationSource,
        execution: ExecutionConfig,
        *,
        stall_after_s: float = 2.0,
        on_observation: Callable[[Observation], None] | None = None,
    ) -> None:
        self.policy = policy
        self.observe = observe
        self.executor = ChunkExecutor(execution)
        self.on_observation = on_observation
        self.worker = InferenceWorker(policy, stall_after_s=stall_after_s)
        self.latencies_s: list[float] = []
        self.ages_s: list[float] = []  # observation age when its chunk arrived
        self._has_chunk = False
        self._next_history_s: float | None = None
        self._gripper_closed = False

    def begin(self, state: RobotState) -> None:
        self.policy.reset()
        self.reanchor()

    def reanchor(self) -> None:
        """Forget the current plan (hand-back after an intervention): hold until a chunk
        predicted from a fresh observation arrives."""
        self.executor.reset()
        self._has_chunk = False
        self._next_history_s = None
        self.worker.poll()  # drop a chunk predicted before the re-anchor

    def end(self) -> None:
        self.executor.reset()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the inference thread (a hung model is left behind: the thread is a daemon)."""
        self.worker.close(timeout_s)

    @property
    def stalled_for_s(self) -> float:
        return self.worker.stalled_for_s()

    def command(self, state: RobotState, period_s: float) -> Command:
        now = state.timestamp_s
        result = self.worker.poll()  # raises PolicyFailedError if the policy raised
        if result is not None:
            self.executor.add(result.chunk, received_s=now)
            self.latencies_s.append(result.latency_s)
            self.ages_s.append(now - result.observation_time_s)
            self._has_chunk = True
        history_period = getattr(self.policy, "observation_period_s", None)
        wants_chunk = not self._has_chunk or self.executor.needs_chunk(now)
        if wants_chunk and self.worker.idle:
            self.worker.submit_act(self._observe(state))
            self._mark_history(now, history_period)
        elif history_period is not None and (
            self._next_history_s is None or now >= self._next_history_s - period_s / 2
        ):
            self.worker.submit_observe(self._observe(state))
            self._mark_history(now, history_period)
        if not self._has_chunk:
            return Command(
                CartesianTarget.holding(
                    state, gripper_closed=self._gripper_closed, timestamp_s=now
                ),
                holding=True,
            )
        target = self.executor.target(now)
        self._gripper_closed = target.gripper_closed
        return Command(target)

    def _mark_history(self, now: float, history_period: float | None) -> None:
        if history_period is not None:
            self._next_history_s = now + history_period

    def _observe(self, state: RobotState) -> Observation:
        observation = self.observe(state)
        if self.on_observation is not None:
            self.on_observation(observation)
        return observation
