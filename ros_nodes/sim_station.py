"""The lockstep workcell run on the wall clock, behind the robot bridge (and cameras).

One clock for the whole graph: stamps are station time (wall clock). At every reset the
workcell's simulated time restarts at zero; the offset between the two is re-anchored so that
stamps keep increasing across episodes and the simulator's per-episode time never shows.
Each tick steps as many control periods as the wall clock has advanced (at most
``max_catch_up`` at once, beyond which the simulation slips behind and says so).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from robot_learning.hardware.robot import RobotReflexError, RobotState
from robot_learning.sim.workcell import Workcell
from ros_nodes.robot_bridge import RobotBridge


class SimStation:
    def __init__(
        self,
        workcell: Workcell,
        bridge: RobotBridge,
        *,
        seed: int,
        max_catch_up: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.workcell = workcell
        self.bridge = bridge
        self.seed = seed
        self.episode = 0
        self.max_catch_up = max_catch_up
        self.slipped_s = 0.0
        self._clock = clock
        self._last_stamp_s = float("-inf")
        self._holding = True
        self._offset_s = 0.0
        self.reset()

    def station_time(self, sim_time_s: float) -> float:
        return sim_time_s + self._offset_s

    @property
    def now_stamp_s(self) -> float:
        return self.station_time(self.workcell.time_s)

    def reset(self) -> RobotState:
        """New scene (seed + episode index), arm at home and holding, clock re-anchored."""
        state = self.workcell.reset(self.seed + self.episode)
        self.workcell.robot.recover()
        self.bridge.clear_target()
        self.bridge.report_error(None)
        self._holding = True
        anchor = max(self._clock(), self._last_stamp_s + self.workcell.control_period_s)
        self._offset_s = anchor - self.workcell.time_s
        return state

    def next_episode(self) -> None:
        self.episode += 1
        self.reset()

    def tick(self) -> list[RobotState]:
        """Step up to the wall clock; publish every state; return the states stepped."""
        period = self.workcell.control_period_s
        due = int((self._clock() - self.now_stamp_s) / period)
        if due > self.max_catch_up:
            self.slipped_s += (due - self.max_catch_up) * period
            self._offset_s += (due - self.max_catch_up) * period
            due = self.max_catch_up
        states = []
        for _ in range(due):
            states.append(self._step())
            stamp = self.station_time(states[-1].timestamp_s)
            self.bridge.publish_state(states[-1], stamp)
            self._last_stamp_s = stamp
        return states

    def _step(self) -> RobotState:
        robot = self.workcell.robot
        target = self.bridge.target
        try:
            if target is not None:
                self._holding = False
                return self.workcell.step(target)
            if not self._holding:
                robot.stop()  # hold where the arm is, not where the last target was
                self._holding = True
            robot.advance()
        except RobotReflexError as exc:
            self.bridge.report_error(f"reflex: {exc}; the next episode recovers")
            self.bridge.clear_target()
        return robot.read_state()
