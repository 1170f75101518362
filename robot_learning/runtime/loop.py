"""One control loop for every arm: read the state, ask the controller, filter, send, wait.

What differs between arms is only the pacing and how the arm advances:
- lockstep (evaluation in the simulator): the physics advances one period per tick and
  nothing waits, so a slow policy costs CPU time, not success;
- wall clock (the real arm through franky, franky-sim, or the simulator in real-time mode):
  ticks start on absolute deadlines ``t0 + k * period``, so one late tick does not shift
  the rest, and a policy that thinks for 100 ms has the world move on meanwhile.

Every tick is timed by phase (state, decide, filter, send) and its start time kept, so a
rollout reports command-period jitter and where each tick's time went.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from robot_learning.hardware.robot import CartesianTarget, Robot, RobotState
from robot_learning.hardware.teleop import TeleopEvent
from robot_learning.runtime.controllers import Command, Controller, ControlSource
from robot_learning.runtime.inference import PolicyFailedError
from robot_learning.runtime.safety import FilteredCommand, SafetyFilter

PHASES = ("state", "decide", "filter", "send")


class Arm(Protocol):
    """What the loop drives. Times in ``read_state`` are on the station clock."""

    control_period_s: float

    def now(self) -> float:
        """The station clock: what a state's age and a command's age are measured on."""
        ...

    def read_state(self) -> RobotState: ...

    def send(self, target: CartesianTarget) -> None: ...

    def advance(self) -> None:
        """Move time on by one period: the simulator steps; a real arm moves by itself."""


class RobotArm:
    """A ``Robot`` (franky on a real FR3 or on franky-sim) as an Arm: it runs on its own."""

    def __init__(self, robot: Robot, control_period_s: float) -> None:
        self.robot = robot
        self.control_period_s = control_period_s

    def now(self) -> float:
        return time.time()  # franky stamps states with host time (hardware/franka.py)

    def read_state(self) -> RobotState:
        return self.robot.read_state()

    def send(self, target: CartesianTarget) -> None:
        self.robot.send_cartesian_target(target)

    def advance(self) -> None:
        pass


class Pacer(Protocol):
    def start(self) -> None: ...

    def wait(self) -> None:
        """Return when the next tick is due."""


class LockstepPacer:
    """No waiting: simulated time advances with the physics, as fast as the CPU allows."""

    def start(self) -> None:
        pass

    def wait(self) -> None:
        pass


class WallClockPacer:
    """Absolute deadlines on ``time.monotonic``; a tick later than a whole period is skipped
    rather than bunched (``missed_ticks`` counts them)."""

    def __init__(
        self,
        period_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        spin_s: float = 0.0005,
    ) -> None:
        self.period_s = period_s
        self.clock = clock
        self.spin_s = spin_s
        self.missed_ticks = 0
        self._next = 0.0

    def start(self) -> None:
        self._next = self.clock() + self.period_s
        self.missed_ticks = 0

    def wait(self) -> None:
        now = self.clock()
        if now > self._next + self.period_s:  # overran a whole period: re-align, count it
            late = int((now - self._next) // self.period_s)
            self.missed_ticks += late
            self._next += late * self.period_s
        remaining = self._next - self.clock()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while self.clock() < self._next:  # the last half millisecond: spin, sleep is coarse
            pass
        self._next += self.period_s


@dataclass
class StepRecord:
    """One tick as the loop saw it, for the recorder and the report."""

    step: int
    state: RobotState
    command: Command
    sent: FilteredCommand


StepCallback = Callable[[StepRecord], None]


@dataclass
class LoopTimings:
    """Tick start times (perf_counter) and per-phase durations, seconds."""

    tick_starts_s: list[float] = field(default_factory=list)
    phases_s: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})

    def periods_ms(self) -> np.ndarray:
        return np.diff(np.asarray(self.tick_starts_s)) * 1e3

    def summary(self, period_s: float) -> dict[str, float]:
        """Command-period jitter (|actual - nominal|) and phase costs, p50/p99 in ms."""
        out: dict[str, float] = {}
        periods = self.periods_ms()
        if len(periods):
            jitter = np.abs(periods - period_s * 1e3)
            out |= {
                "period_p50_ms": float(np.percentile(periods, 50)),
                "jitter_p50_ms": float(np.percentile(jitter, 50)),
                "jitter_p99_ms": float(np.percentile(jitter, 99)),
            }
        for phase, values in self.phases_s.items():
            if values:
                ms = np.asarray(values) * 1e3
                out[f"{phase}_p50_ms"] = float(np.percentile(ms, 50))
                out[f"{phase}_p99_ms"] = float(np.percentile(ms, 99))
        return out


@dataclass(frozen=True)
class LoopResult:
    steps: int
    stopped_by: str  # "success", "operator", "max_duration", "callback", "fault"
    timings: LoopTimings
    safety_counts: dict[str, int]
    missed_ticks: int
    faults: tuple[str, ...] = ()  # what went wrong, in words for the operator


def _holding(command: Command, state: RobotState) -> Command:
    """``command`` turned into "stay where you are", keeping what the operator's device read
    and what the policy and the device wanted (the arbiter's fields, recorded per step)."""
    return replace(
        command,
        target=CartesianTarget.holding(state),
        holding=True,
        source=None if command.source is None else ControlSource.HOLD,
    )


class ControlLoop:
    """Drives ``arm`` with ``controller`` through ``safety`` at the arm's control period."""

    def __init__(
        self, arm: Arm, controller: Controller, safety: SafetyFilter, pacer: Pacer | None = None
    ) -> None:
        self.arm = arm
        self.controller = controller
        self.safety = safety
        self.pacer = pacer or LockstepPacer()

    def run(
        self,
        *,
        max_duration_s: float,
        is_success: Callable[[], bool] | None = None,
        settle_s: float = 0.2,
        on_step: StepCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> LoopResult:
        """Until the operator reports SUCCESS (then ``settle_s`` more), ``is_success`` has
        held for ``settle_s``, ``should_stop`` says so, or ``max_duration_s`` has passed."""
        period = self.arm.control_period_s
        max_steps = int(round(max_duration_s / period))
        settle_steps = int(round(settle_s / period))
        timings = LoopTimings()
        clock = time.perf_counter
        state = self.arm.read_state()
        self.safety.reset(state)
        self.controller.begin(state)
        self.pacer.start()
        reported_at = success_since = None
        stopped_by, step = "max_duration", 0
        fault: str | None = None
        stalls: list[str] = []
        try:
            while step < max_steps:
                t0 = clock()
                state = self.arm.read_state()
                t1 = clock()
                try:
                    command = self.controller.command(state, period)
                except PolicyFailedError as error:  # hold this tick, end the episode
                    fault = str(error)
                    held = CartesianTarget.holding(state)
                    # the policy's and the device's targets are recorded with every step
                    command = Command(
                        held,
                        holding=True,
                        source=ControlSource.HOLD,
                        policy_target=held,
                        human_target=held,
                    )
                stalled = self.controller.stalled_for_s
                if stalled > 0 and not command.holding:  # a hung model: hold, say so once
                    if not any(f.startswith("policy hung") for f in stalls):
                        stalls.append(
                            f"policy hung: no chunk for {stalled:.1f} s beyond the "
                            "stall limit; holding"
                        )
                    command = _holding(command, state)
                t2 = clock()
                if command.holding:
                    sent = self.safety.hold(state, self.arm.now())
                else:
                    sent = self.safety.filter(command.target, state, self.arm.now())
                t3 = clock()
                if on_step is not None:  # before the world moves on: frames match the state
                    on_step(StepRecord(step, state, command, sent))
                t4 = clock()
                self.arm.send(sent.target)
                self.arm.advance()
                t5 = clock()
                for phase, duration in zip(
                    PHASES, (t1 - t0, t2 - t1, t3 - t2, t5 - t4), strict=True
                ):
                    timings.phases_s[phase].append(duration)
                timings.tick_starts_s.append(t0)
                step += 1
                if fault is not None:
                    stopped_by = "fault"
                    break
                if TeleopEvent.SUCCESS in command.events and reported_at is None:
                    reported_at = step
                if reported_at is not None and step - reported_at >= settle_steps:
                    stopped_by = "operator"
                    break
                if is_success is not None:
                    success_since = (success_since or step) if is_success() else None
                    if success_since is not None and step - success_since >= settle_steps:
                        stopped_by = "success"
                        break
                if should_stop is not None and should_stop():
                    stopped_by = "callback"
                    break
                self.pacer.wait()
        finally:
            self.controller.end()
        faults = ([fault] if fault else []) + stalls
        return LoopResult(
            step,
            stopped_by,
            timings,
            self.safety.summary(),
            getattr(self.pacer, "missed_ticks", 0),
            tuple(faults),
        )
