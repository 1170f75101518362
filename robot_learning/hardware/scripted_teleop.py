"""ScriptedTeleop: a TeleopDevice that plays a fixed operator script on the wall clock.

For running a collection graph with nobody at the station (tests, CI, the ROS demo): each
episode presses START, plays the script's twist/gripper segments, presses SUCCESS, then
idles for ``pause_s`` so the scene can reset, ``episodes`` times. Unlike the simulator's
scripted experts it needs no privileged state, so it runs in its own process, like a
SpaceMouse would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent


@dataclass(frozen=True)
class Segment:
    duration_s: float
    twist: tuple[float, float, float, float, float, float]  # m/s, rad/s, base frame
    gripper_closed: bool = False


# Forward, down, close, up, back: moves every axis the recorder checks.
DEFAULT_SCRIPT: tuple[Segment, ...] = (
    Segment(0.6, (0.05, 0.0, 0.0, 0.0, 0.0, 0.0)),
    Segment(0.6, (0.0, 0.03, -0.05, 0.0, 0.0, 0.2)),
    Segment(0.4, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), gripper_closed=True),
    Segment(0.6, (0.0, 0.0, 0.05, 0.0, 0.0, 0.0), gripper_closed=True),
)


class ScriptedTeleop(TeleopDevice):
    def __init__(
        self,
        *,
        episodes: int,
        script: Sequence[Segment] = DEFAULT_SCRIPT,
        pause_s: float = 1.0,
        start_delay_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if episodes < 0 or pause_s < 0 or start_delay_s < 0 or not script:
            raise ValueError(
                "scripted teleop needs episodes >= 0, pause_s >= 0, "
                "start_delay_s >= 0 and at least one segment"
            )
        self.episodes = episodes
        self.script = tuple(script)
        self.pause_s = pause_s
        self.start_delay_s = start_delay_s
        self._clock = clock
        self._t0: float | None = None
        self._sent: set[tuple[int, TeleopEvent]] = set()
        self.episode_s = sum(s.duration_s for s in self.script)

    def connect(self) -> None:
        if self._t0 is None:
            self._t0 = self._clock()

    @property
    def finished(self) -> bool:
        """All episodes played (the device idles from then on)."""
        return self._t0 is not None and self._episode_at(self._clock())[0] >= self.episodes

    def _episode_at(self, now_s: float) -> tuple[int, float]:
        assert self._t0 is not None
        t = now_s - self._t0 - self.start_delay_s
        if t < 0:
            return -1, t
        cycle = self.episode_s + self.pause_s
        return int(t // cycle), t % cycle

    def read(self) -> TeleopCommand:
        if self._t0 is None:
            raise RuntimeError("scripted teleop is not connected")
        now = self._clock()
        episode, t = self._episode_at(now)
        idle = TeleopCommand(now, np.zeros(6), gripper_closed=False)
        if episode < 0 or episode >= self.episodes:
            return idle
        events = set()
        if (episode, TeleopEvent.START) not in self._sent:
            events.add(TeleopEvent.START)
        if t >= self.episode_s:  # the script is over: report once, then idle
            if (episode, TeleopEvent.SUCCESS) not in self._sent:
                events.add(TeleopEvent.SUCCESS)
            self._sent |= {(episode, e) for e in events}
            return TeleopCommand(now, np.zeros(6), False, events=frozenset(events))
        self._sent |= {(episode, e) for e in events}
        for segment in self.script:
            if t < segment.duration_s:
                return TeleopCommand(
                    now,
                    np.array(segment.twist, float),
                    segment.gripper_closed,
                    intervene=True,
                    events=frozenset(events),
                )
            t -= segment.duration_s
        return idle
