"""Scripted human demonstrators: the hand stand-in doing ``lift`` and ``push``.

Each is a small phase machine over the privileged simulator state, like the robot's scripted
experts, but it moves the hand (position, yaw, pinch closure) instead of commanding an arm:
speed-limited proportional motion with seeded Ornstein-Uhlenbeck velocity noise, so no two
demonstrations are alike. ``run_hand_episode`` plays one in lockstep, one control period
per tick, with the arm parked and holding still.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_learning.geometry import wrap_angle, yaw_of_mat
from robot_learning.sim.hand import HandPose, SimHand
from robot_learning.sim.workcell import Workcell

MAX_SPEED_M_S = 0.25
MAX_YAW_RATE_RAD_S = 1.5
GAIN_PER_S = 4.0
CLOSE_TIME_S = 0.5  # open to squeezing
HAND_START_M = np.array([0.55, 0.0, 0.52])  # the FR3's TCP at the workcell's home posture


@dataclass
class HandCommand:
    pose: HandPose
    closure: float  # 0 open .. 1 squeezing
    done: bool = False


class HandDemonstrator(ABC):
    """Moves ``hand`` towards the goal its ``plan`` names, with human-like variability."""

    def __init__(self, *, workcell: Workcell, rng: np.random.Generator, noise_m_s: float):
        if workcell.hand is None:
            raise ValueError("the workcell has no hand: build it with Workcell(human_hand=True)")
        self.workcell, self.hand, self.task = workcell, workcell.hand, workcell.task
        self.rng, self.noise_m_s = rng, noise_m_s
        self.phase, self._phase_start_s = "", 0.0
        self._noise = np.zeros(3)
        self.position = np.array(self.task_start_position())
        self.yaw = 0.0
        self.closure = 0.0
        self.hand.place(HandPose(self.position.copy(), self.yaw))

    def task_start_position(self) -> np.ndarray:
        """Where the hand starts: where the robot's gripper starts, give or take a few cm, as
        a demonstrator is asked to. From a shared start the tracks differ by what the scene
        shows (where the cube is), not by where the motion began; hands that came in from
        the side taught MT-pi nothing about moves from the robot's start: on cubes only the
        hand videos showed it succeeded 0/50 with those, 13/50 with these
        (``benchmarks/mtpi_transfer.py``)."""
        return HAND_START_M + self.rng.normal(0.0, 0.03, 3)

    def enter(self, phase: str, now_s: float) -> None:
        self.phase, self._phase_start_s = phase, now_s

    def time_in_phase(self, now_s: float) -> float:
        return now_s - self._phase_start_s

    def step(self, now_s: float, dt_s: float) -> HandCommand:
        """Plan, then move the hand one control period towards the plan."""
        goal, yaw, closing, done = self.plan(now_s)
        error = goal - self.position
        velocity = GAIN_PER_S * error
        speed = float(np.linalg.norm(velocity))
        if speed > MAX_SPEED_M_S:
            velocity *= MAX_SPEED_M_S / speed
        if self.noise_m_s > 0:
            decay = np.exp(-dt_s / 0.3)
            self._noise = decay * self._noise + np.sqrt(1 - decay**2) * self.noise_m_s * (
                self.rng.normal(size=3)
            )
            velocity = velocity + self._noise * min(1.0, float(np.linalg.norm(error)) / 0.02)
        self.position = self.position + velocity * dt_s
        yaw_step = (
            np.clip(
                GAIN_PER_S * wrap_angle(yaw - self.yaw), -MAX_YAW_RATE_RAD_S, MAX_YAW_RATE_RAD_S
            )
            * dt_s
        )
        self.yaw += float(yaw_step)
        rate = dt_s / CLOSE_TIME_S
        self.closure = float(np.clip(self.closure + (rate if closing else -rate), 0.0, 1.0))
        command = HandCommand(HandPose(self.position.copy(), self.yaw), self.closure, done)
        self.hand.set_pose(command.pose)
        self.hand.set_closure(command.closure)
        return command

    def reached(self, goal: np.ndarray, tolerance_m: float) -> bool:
        return float(np.linalg.norm(goal - self.position)) < tolerance_m

    @abstractmethod
    def plan(self, now_s: float) -> tuple[np.ndarray, float, bool, bool]:
        """(goal position of the hand frame, goal yaw, pinch closing?, task done?)."""


class LiftDemonstrator(HandDemonstrator):
    """Over the cube, down around it, pinch across two faces, lift it."""

    hover_m = 0.12
    carry_z_m = 0.2

    def plan(self, now_s: float) -> tuple[np.ndarray, float, bool, bool]:
        cube = self.task.cube.position
        if not self.phase:
            self.enter("approach", now_s)
        if self.phase in ("approach", "descend"):
            yaw = self.yaw + wrap_angle(yaw_of_mat(self.task.cube.mat) - self.yaw, np.pi / 2)
            goal = cube + [0.0, 0.0, self.hover_m if self.phase == "approach" else 0.0]
            if (
                self.phase == "approach"
                and self.reached(goal, 0.01)
                and abs(wrap_angle(yaw - self.yaw)) < 0.05
            ):
                self.enter("descend", now_s)
            elif self.phase == "descend" and self.reached(goal, 0.004):
                self._grasp = goal.copy()
                self.enter("close", now_s)
            return goal, yaw, False, False
        if self.phase == "close":
            if self.time_in_phase(now_s) > CLOSE_TIME_S + 0.3:
                self.enter("lift", now_s)
            return self._grasp, self.yaw, True, False
        goal = np.array([self._grasp[0], self._grasp[1], self.carry_z_m])
        return goal, self.yaw, True, bool(self.task.is_success())


class PushDemonstrator(HandDemonstrator):
    """Pinched fingers as a paddle: behind the cube, push it along the line to the target."""

    hover_z_m = 0.1
    push_z_m = 0.016  # hand frame height: fingertips about 1 cm above the table
    standoff_m = 0.045

    def plan(self, now_s: float) -> tuple[np.ndarray, float, bool, bool]:
        task = self.task
        cube = task.cube.position
        delta = task.target_xy - cube[:2]
        distance = float(np.linalg.norm(delta))
        u = np.append(delta / max(distance, 1e-9), 0.0)
        # fingertips side by side across the push line: the hand's x along it
        yaw = self.yaw + wrap_angle(float(np.arctan2(u[1], u[0])) - self.yaw, np.pi)
        behind = cube - u * (0.025 + self.standoff_m)
        if not self.phase:
            self.enter("approach", now_s)
        if self.phase == "approach":
            goal = np.array([behind[0], behind[1], self.hover_z_m])
            if self.reached(goal, 0.012) and abs(wrap_angle(yaw - self.yaw)) < 0.05:
                self.enter("lower", now_s)
            return goal, yaw, True, False
        if self.phase == "lower":
            goal = np.array([behind[0], behind[1], self.push_z_m])
            if self.reached(goal, 0.006):
                self.enter("push", now_s)
            return goal, self.yaw, True, False
        if self.phase == "push":
            if distance < 0.01:
                self.enter("done", now_s)
            relative = cube - self.position
            along = float(relative[:2] @ u[:2])
            lateral = relative - along * u
            lateral[2] = 0.0
            if along < 0.02 or np.linalg.norm(lateral) > 0.02:
                self.enter("retreat", now_s)
            # aim just past the cube along the line: speed grows with the distance left
            goal = self.position + u * float(np.clip(0.5 * distance, 0.008, 0.025)) + lateral
            goal[2] = self.push_z_m
            return goal, self.yaw, True, False
        if self.phase == "retreat":
            goal = np.array([self.position[0], self.position[1], self.hover_z_m])
            if self.reached(goal, 0.02):
                self.enter("approach", now_s)
            return goal, self.yaw, True, False
        goal = np.array([self.position[0], self.position[1], self.hover_z_m])  # done
        if distance > 0.025:
            self.enter("retreat", now_s)
        return goal, self.yaw, True, bool(task.is_success())


DEMONSTRATORS: dict[str, type[HandDemonstrator]] = {
    "lift": LiftDemonstrator,
    "push": PushDemonstrator,
}


@dataclass(frozen=True)
class HandEpisodeResult:
    seed: int
    success: bool
    steps: int
    duration_s: float


def run_hand_episode(
    workcell: Workcell,
    *,
    seed: int,
    noise_m_s: float = 0.02,
    settle_s: float = 0.3,
    on_step: Callable[[int, HandCommand], None] | None = None,
) -> HandEpisodeResult:
    """Reset to ``seed`` and let the task's demonstrator move the hand until it is done
    (plus ``settle_s``) or the task's time runs out. ``on_step(step, command)`` runs after
    each control period (the recorder samples there)."""
    cls = DEMONSTRATORS.get(workcell.task.name)
    if cls is None:
        raise ValueError(
            f"no hand demonstrator for task {workcell.task.name!r}; "
            f"known: {', '.join(DEMONSTRATORS)}"
        )
    workcell.reset(seed)
    demo = cls(workcell=workcell, rng=np.random.default_rng([seed, 2]), noise_m_s=noise_m_s)
    dt_s = workcell.control_period_s
    steps = int(round(workcell.task.max_duration_s / dt_s))
    done_at: float | None = None
    step = 0
    for step in range(steps):
        command = demo.step(workcell.time_s, dt_s)
        workcell.robot.advance()
        if on_step is not None:
            on_step(step, command)
        if command.done and done_at is None:
            done_at = workcell.time_s
        if done_at is not None and workcell.time_s - done_at >= settle_s:
            break
    return HandEpisodeResult(
        seed=seed, success=workcell.is_success(), steps=step + 1, duration_s=workcell.time_s
    )


__all__ = [
    "DEMONSTRATORS",
    "HandCommand",
    "HandDemonstrator",
    "HandEpisodeResult",
    "SimHand",
    "run_hand_episode",
]
