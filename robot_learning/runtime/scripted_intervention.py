"""An operator who lets the policy drive, takes over for a stretch, and hands back.

For deployment graphs with nobody at the station (tests, CI, the ROS demo): each episode
presses START, keeps hands off for ``policy_s``, then holds the intervene button for
``intervene_s`` while moving at ``twist``, lets go for ``after_s``, presses SUCCESS and
idles ``pause_s`` while the scene resets. It runs on the wall clock in its own process, as
a SpaceMouse would; unlike ``robot_learning.sim.operator.SimulatedOperator`` it needs no
privileged simulator state, so it cannot judge the policy, only play its schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent


class ScriptedIntervention(TeleopDevice):
    def __init__(
        self,
        *,
        episodes: int,
        policy_s: float = 1.5,
        intervene_s: float = 1.0,
        after_s: float = 1.5,
        pause_s: float = 1.0,
        start_delay_s: float = 0.5,
        twist: tuple[float, ...] = (0.0, 0.0, 0.04, 0.0, 0.0, 0.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        durations = (policy_s, intervene_s, after_s, pause_s, start_delay_s)
        if episodes < 0 or min(durations) < 0 or len(twist) != 6:
            raise ValueError(
                "scripted intervention needs episodes >= 0, durations >= 0 and a "
                f"6-value twist; got episodes={episodes}, durations={durations}, "
                f"twist={twist}"
            )
        self.episodes = episodes
        self.policy_s, self.intervene_s, self.after_s = policy_s, intervene_s, after_s
        self.pause_s, self.start_delay_s = pause_s, start_delay_s
        self.twist = np.asarray(twist, dtype=np.float64)
        self._clock = clock
        self._t0: float | None = None
        self._sent: set[tuple[int, TeleopEvent]] = set()

    @property
    def episode_s(self) -> float:
        return self.policy_s + self.intervene_s + self.after_s

    def connect(self) -> None:
        if self._t0 is None:
            self._t0 = self._clock()

    def read(self) -> TeleopCommand:
        if self._t0 is None:
            raise RuntimeError("scripted intervention is not connected")
        now = self._clock()
        t = now - self._t0 - self.start_delay_s
        cycle = self.episode_s + self.pause_s
        episode, t = (int(t // cycle), t % cycle) if t >= 0 else (-1, t)
        if not 0 <= episode < self.episodes:
            return TeleopCommand(now, np.zeros(6), False)
        events = {TeleopEvent.START} if (episode, TeleopEvent.START) not in self._sent else set()
        if t >= self.episode_s and (episode, TeleopEvent.SUCCESS) not in self._sent:
            events.add(TeleopEvent.SUCCESS)
        self._sent |= {(episode, e) for e in events}
        intervening = self.policy_s <= t < self.policy_s + self.intervene_s
        return TeleopCommand(
            now,
            self.twist.copy() if intervening else np.zeros(6),
            False,
            intervene=intervening,
            events=frozenset(events),
        )
