"""The lockstep rollout runner with a policy in control: chunks anchored at observation
times, executed through the ChunkExecutor, history offered at the policy rate."""

from __future__ import annotations

import numpy as np

from robot_learning.keys import ACTION, TIMESTAMP, camera_key
from robot_learning.runtime import ActionChunk, ExecutionConfig, Observation
from robot_learning.runtime.controllers import PolicyController
from robot_learning.sim.rollout import run_episode, workcell_observer
from robot_learning.sim.workcell import Workcell
from robot_learning.store import StoreReader


class ReplayPolicy:
    """Plays back a recorded demonstration's actions as chunks (open loop, by time)."""

    observation_period_s = 0.1

    def __init__(self, times: np.ndarray, actions: np.ndarray, horizon: int = 16) -> None:
        self.times, self.actions, self.horizon = times, actions, horizon
        self.acted: list[float] = []
        self.observed: list[float] = []

    def reset(self) -> None:
        self.acted.clear()
        self.observed.clear()

    def observe(self, observation: Observation) -> None:
        self.observed.append(observation.time_s)

    def act(self, observation: Observation) -> ActionChunk:
        assert observation[camera_key("front")].shape == (48, 64, 3)
        self.acted.append(observation.time_s)
        i = int(np.searchsorted(self.times, observation.time_s + 1e-6) - 1)
        rows = np.clip(np.arange(i, i + self.horizon), 0, len(self.actions) - 1)
        times = observation.time_s + 0.1 * np.arange(self.horizon)
        return ActionChunk.from_vectors(times, self.actions[rows])


def test_a_policy_replaying_a_demo_through_the_executor_solves_the_task(tmp_path):
    from data_collection.sim_collect import CollectConfig, collect

    store = tmp_path / "demo.zarr"
    collect(
        CollectConfig(task="lift", episodes=1, store=store, image_size=(48, 64), seed=7),
        progress=False,
    )
    data = StoreReader(store).read_episode(0, keys=[TIMESTAMP, ACTION])
    policy = ReplayPolicy(data[TIMESTAMP], data[ACTION])
    with Workcell(task="lift", seed=7, image_size=(48, 64)) as workcell:
        controller = PolicyController(
            policy, workcell_observer(workcell), ExecutionConfig(execute_steps=8)
        )
        result = run_episode(workcell, seed=7, controller=controller, stop_on_success=True)
    assert result.success and result.first_success_s is not None
    # queried every 8 policy steps (0.8 s), shown the observations in between every 0.1 s
    np.testing.assert_allclose(np.diff(policy.acted), 0.8, atol=1e-6)
    every = np.sort(np.concatenate([policy.acted, policy.observed]))
    np.testing.assert_allclose(np.diff(every), 0.1, atol=1e-6)
    assert len(controller.latencies_s) == len(policy.acted)
