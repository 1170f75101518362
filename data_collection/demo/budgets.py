"""Named budgets of ``rl demo``: how many views, episodes and training steps each stage gets.

``full`` (the default, ``make demo``) is sized to finish within 30 minutes on a 2-core CPU;
``smoke`` runs every stage in a minute or two (the test's budget: it shows every part works,
not that the policies learn). The report prints the budget it ran with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

POLICIES = ("act", "diffusion", "mtpi")  # trained and evaluated by the demo, in this order
ROUNDS_POLICY = "act"  # the one deployed and retrained from interventions (the fastest)


@dataclass(frozen=True)
class DemoBudget:
    name: str
    task: str = "lift"  # MT-pi's hand demonstrator knows lift and push
    # calibration (the simulated ChArUco procedure, errors against the simulator's truth)
    calibration_cameras: tuple[str, ...] = ("wrist", "front", "side")
    calibration_views: int = 20  # rl calibrate's default
    calibration_size: tuple[int, int] = (480, 640)
    # data: the ROS 2 collection graph, scripted-expert demos, hand videos
    ros_episodes: int = 3
    ros_size: tuple[int, int] = (72, 96)
    ros_timeout_s: float = 180.0  # for the graph to start and commit ros_episodes
    demos: int = 60
    hand_videos: int = 20
    # The robot demos film every view any policy uses; episodes keep their own camera sets
    # in one store, so the hand videos add only the two fixed views they can film.
    robot_cameras: tuple[str, ...] = ("front", "wrist", "side")
    hand_cameras: tuple[str, ...] = ("front", "side")
    policy_cameras: dict[str, tuple[str, ...]] = field(
        # ACT and Diffusion see what their presets were tuned on (the probe: front +
        # wrist); MT-pi triangulates its tracks from the two fixed views.
        default_factory=lambda: {
            "act": ("front", "wrist"),
            "diffusion": ("front", "wrist"),
            "mtpi": ("front", "side"),
        }
    )
    image_size: tuple[int, int] = (72, 96)  # recorded = the sim presets' size: no resizing
    # training (sim presets of policies.registry), evaluation, intervention rounds
    train_steps: dict[str, int] = field(
        # ACT learns lift fastest on this CPU (sim preset: 4,000 steps on 100 demos reach
        # 17/20), so it gets most of the time; Diffusion and MT-pi only show they train.
        # 1,500 ACT steps on 40 demos left it at 0/16 (README).
        default_factory=lambda: {"act": 3500, "diffusion": 500, "mtpi": 400}
    )
    round_steps: int = 1500  # each retraining round fine-tunes ACT this many more steps
    # Config fields changed from a policy's sim preset (rl train --set). The demo keeps ACT's
    # transformer at 192/384, the preset's size until 2026-11-28: the preset's 256/1024 costs
    # half again as much CPU time a step, which the 30-minute budget does not have.
    policy_changes: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"act": {"dim_model": 192, "dim_feedforward": 384}}
    )
    batch_size: int = 32
    eval_episodes: int = 16
    max_episode_s: float | None = None  # None: the task's own time limit
    frame_strips: int = 2  # rollouts per policy drawn as frame strips
    rounds: int = 1  # deploy -> retrain cycles (each fine-tunes ACT for round_steps)
    deploy_episodes: int = 10

    def __post_init__(self) -> None:
        missing = [p for p in POLICIES if self.train_steps.get(p, 0) < 1]
        if missing:
            raise ValueError(f"budget {self.name!r}: no training steps for {missing}")
        unrecorded = {
            p: c for p, c in self.policy_cameras.items() if not set(c) <= set(self.robot_cameras)
        }
        if unrecorded or set(self.policy_cameras) != set(POLICIES):
            raise ValueError(
                f"budget {self.name!r}: policy_cameras must name each of {POLICIES} with "
                f"cameras among robot_cameras {self.robot_cameras}; got {self.policy_cameras}"
            )
        if not set(self.hand_cameras) <= set(self.robot_cameras):
            raise ValueError(
                f"budget {self.name!r}: hand_cameras {self.hand_cameras} must be among "
                f"robot_cameras {self.robot_cameras} (MT-pi labels both from the same views)"
            )
        if self.round_steps < 1:
            raise ValueError(f"budget {self.name!r}: round_steps must be >= 1")
        if min(self.demos, self.hand_videos, self.eval_episodes, self.deploy_episodes) < 1:
            raise ValueError(f"budget {self.name!r}: every episode count must be >= 1")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


BUDGETS = {
    "full": DemoBudget(name="full"),
    "smoke": DemoBudget(
        name="smoke",
        calibration_cameras=("wrist", "front"),  # front + side need more views to share some
        calibration_views=10,
        calibration_size=(240, 320),
        ros_episodes=1,
        ros_timeout_s=120.0,
        demos=3,
        hand_videos=2,
        train_steps={"act": 4, "diffusion": 4, "mtpi": 4},
        round_steps=4,
        batch_size=8,
        eval_episodes=2,
        max_episode_s=3.0,
        frame_strips=1,
        rounds=1,
        deploy_episodes=2,
    ),
}


def budget(name: str) -> DemoBudget:
    if name not in BUDGETS:
        raise ValueError(f"unknown demo budget {name!r}; known: {', '.join(BUDGETS)}")
    return BUDGETS[name]
