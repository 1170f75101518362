"""The simulated workcell as an ``Arm`` for the runtime's control loop.

Lockstep (evaluation, collection): the station clock is the simulated time, physics advances
one period per tick. Real-time: the loop paces ticks on the wall clock and the simulator's
per-episode time is shifted onto the station clock, so a policy, the safety filter and the
recorder see the same kind of stamps as on the real arm (time never restarts at an episode).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from robot_learning.hardware.camera import CameraFrame
from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.keys import (
    EE_POSE,
    GRIPPER_WIDTH,
    JOINT_POSITIONS,
    JOINT_VELOCITIES,
    camera_key,
)
from robot_learning.runtime.observation import Observation
from robot_learning.sim.workcell import Workcell


class WorkcellArm:
    def __init__(
        self, workcell: Workcell, *, station_clock: Callable[[], float] | None = None
    ) -> None:
        """``station_clock`` None: lockstep, station time is simulated time."""
        self.workcell = workcell
        self.station_clock = station_clock
        self.control_period_s = workcell.control_period_s
        self.offset_s = 0.0
        self._state: RobotState | None = None
        self._target: CartesianTarget | None = None
        self.max_catch_up = 10
        self.caught_up_steps = 0  # physics steps taken beyond one per tick (late ticks)
        self._frames: dict[str, CameraFrame] = {}
        self._frames_at: float | None = None

    @property
    def realtime(self) -> bool:
        return self.station_clock is not None

    def reset(self, seed: int) -> RobotState:
        state = self.workcell.reset(seed)
        if self.station_clock is not None:
            self.offset_s = self.station_clock() - state.timestamp_s
        self._state, self._target = state, None
        self._frames, self._frames_at = {}, None  # time restarts: nothing rendered yet
        return self.read_state()

    def now(self) -> float:
        if self.station_clock is not None:
            return self.station_clock()
        return self.workcell.time_s + self.offset_s

    def read_state(self) -> RobotState:
        if self._state is None:
            raise RuntimeError("WorkcellArm.read_state before reset(seed)")
        return dataclasses.replace(self._state, timestamp_s=self._state.timestamp_s + self.offset_s)

    def send(self, target: CartesianTarget) -> None:
        self._target = target

    def advance(self) -> None:
        """One period of physics; in real time, as many as the wall clock has moved on (the
        world does not wait for a late tick), at most ``max_catch_up`` at once."""
        if self._target is None:
            raise RuntimeError("WorkcellArm.advance before any target was sent")
        steps = 1
        if self.station_clock is not None:
            behind = self.station_clock() - (self.workcell.time_s + self.offset_s)
            steps = int(np.clip(np.floor(behind / self.control_period_s), 1, self.max_catch_up))
        for _ in range(steps):
            self._state = self.workcell.step(self._target)
        self.caught_up_steps += steps - 1

    def frame(self, camera: str) -> CameraFrame:
        """The camera's image now, stamped on the station clock. Rendered once per physics
        instant: the policy's observation and the recorder's step share it."""
        now = self.workcell.time_s
        if self._frames_at != now:
            self._frames, self._frames_at = {}, now
        if camera not in self._frames:
            frame = self.workcell.cameras[camera].read()
            self._frames[camera] = dataclasses.replace(
                frame, timestamp_s=frame.timestamp_s + self.offset_s
            )
        return self._frames[camera]

    def observer(self, cameras: Sequence[str] | None = None) -> Callable[[RobotState], Observation]:
        """Observations as the recorder stores them, stamped on the station clock."""
        return workcell_observer(self.workcell, cameras, read_frame=self.frame)


def workcell_observer(
    workcell: Workcell,
    cameras: Sequence[str] | None = None,
    *,
    read_frame: Callable[[str], CameraFrame] | None = None,
) -> Callable[[RobotState], Observation]:
    """Observations as the recorder stores them: the named cameras rendered now and the
    robot state, each with its timestamp (simulated seconds, or the clock ``read_frame``
    stamps frames on, as the state's)."""
    names = tuple(cameras) if cameras is not None else workcell.camera_names
    read = read_frame or (lambda name: workcell.cameras[name].read())

    def observe(state: RobotState) -> Observation:
        values = {
            EE_POSE: state.ee_pose_vector(),
            GRIPPER_WIDTH: state.gripper_width_m,
            JOINT_POSITIONS: state.joint_positions,
            JOINT_VELOCITIES: state.joint_velocities,
        }
        stamps = dict.fromkeys(values, state.timestamp_s)
        for name in names:
            frame = read(name)
            values[camera_key(name)] = frame.color
            stamps[camera_key(name)] = frame.timestamp_s
        return Observation(time_s=state.timestamp_s, values=values, timestamps_s=stamps)

    return observe


def monotonic_station_clock() -> float:
    """The station clock of a real-time simulated cell (seconds, never goes back)."""
    return time.monotonic()
