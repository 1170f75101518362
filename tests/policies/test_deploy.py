"""``rl deploy --sim``: a checkpoint in control, a simulated operator taking over, and every
rollout recorded with who was in control."""

from __future__ import annotations

import json
import threading

import numpy as np

from robot_learning.keys import ACTION, CONTROL_SOURCE, HUMAN_ACTION, POLICY_ACTION
from robot_learning.runtime.controllers import ControlSource
from robot_learning.store import StoreReader
from robot_learning.store.validate import validate
from tests.policies.conftest import train_tiny
from tests.rl_cli import run_rl


def test_rl_deploy_records_policy_and_intervention_episodes(lift_store, tmp_path):
    """A barely trained policy goes nowhere; the simulated operator takes over and the
    recorded steps say who was in control, with both actions."""
    train_tiny(lift_store, tmp_path / "run", "diffusion", steps=2)
    store = tmp_path / "rollouts.zarr"
    result = run_rl(
        *("deploy", "--sim", "--checkpoint", str(tmp_path / "run"), "--task", "lift"),
        *("--episodes", "2", "--store", str(store), "--max-duration", "6", "--json"),
        *("--samples", "2"),  # two chunks drawn a query, their medoid played
        *("--speed", "1.5"),  # and played faster than predicted
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["episodes"] == 2 and report["interventions"] >= 1
    assert report["inference"] == {"num_inference_steps": 4, "num_samples": 2}
    assert report["execution"]["speed"] == 1.5
    assert report["recorded"] == [0, 1]
    assert validate(store) == []
    reader = StoreReader(store)
    infos = [reader.episode(i).info for i in range(2)]
    assert {info.source for info in infos} <= {"policy", "intervention"}
    assert "intervention" in {info.source for info in infos}
    assert all(len(info.notes["checkpoint_sha256"]) == 64 for info in infos)
    assert all(info.notes["execution"]["speed"] == 1.5 for info in infos)
    ep = next(i for i, info in enumerate(infos) if info.source == "intervention")
    data = reader.read_episode(ep, keys=[CONTROL_SOURCE, ACTION, POLICY_ACTION, HUMAN_ACTION])
    sources = data[CONTROL_SOURCE]
    human = sources == ControlSource.HUMAN
    assert human.any() and (sources != ControlSource.HUMAN).any()
    # while the human was in control, the executed action is the human's
    np.testing.assert_allclose(
        data[ACTION][human][:, :3], data[HUMAN_ACTION][human][:, :3], atol=0.05 + 1e-6
    )  # within the safety filter's lead bound
    assert np.isfinite(data[POLICY_ACTION]).all()
    assert reader.episode(ep).info.notes["takeovers"]


def test_rl_deploy_refuses_a_training_seed(lift_store, tmp_path):
    train_tiny(lift_store, tmp_path / "run", "act", steps=2)
    result = run_rl(
        *("deploy", "--sim", "--checkpoint", str(tmp_path / "run"), "--task", "lift"),
        *("--episodes", "1", "--seed", "2"),
        timeout=300,
    )
    assert result.returncode == 2 and "were used by training" in result.stderr


def test_interventions_land_in_the_demo_store_and_weight_training(lift_store, tmp_path):
    """HG-DAgger: rollouts appended to the demonstrations' own store; training draws the
    teleop steps and the human-controlled steps, never the policy's own."""
    import shutil

    from policies.data import DataSelection, StepBatches, TrainingData
    from policies.deploy import DeployConfig, deploy_sim
    from tests.policies.conftest import tiny_config

    store = tmp_path / "demos.zarr"
    shutil.copytree(lift_store, store)
    train_tiny(store, tmp_path / "run", "act", steps=2)
    report = deploy_sim(
        DeployConfig(
            checkpoint=tmp_path / "run", task="lift", episodes=1, store=store, max_duration_s=5.0
        ),
        progress=False,
    )
    assert report.recorded == [4] and report.interventions >= 1
    assert validate(store) == []
    selection = DataSelection(success=None, val_fraction=0.0, human_weight=2.0)
    data = TrainingData.from_store(
        str(store), tiny_config("act"), selection, cache_images=False, progress=False
    )
    episode_of = np.asarray(data.train._episode_of_anchor)
    control = StoreReader(store).read_episode(4, keys=[CONTROL_SOURCE])[CONTROL_SOURCE]
    weights = data.weights
    assert np.all(weights[episode_of < 4] == 1.0)
    np.testing.assert_array_equal(
        weights[episode_of == 4], np.where(control == ControlSource.HUMAN, 2.0, 0.0)
    )
    drawn = np.concatenate(
        [
            StepBatches(len(weights), 8, seed=0, steps=40, weights=weights).indices(s)
            for s in range(40)
        ]
    )
    assert np.all(weights[drawn] > 0)
    assert np.isin(np.flatnonzero(episode_of == 4), drawn).any()

    # RLIF labels of the same rollout: -1 where the human took over, 0 elsewhere
    out = tmp_path / "rlif.npz"
    result = run_rl("store", "export-rlif", str(store), "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    labels = np.load(out)
    assert list(labels["episodes"]) == [4]
    np.testing.assert_array_equal(labels["control_source"], control)
    human = control == ControlSource.HUMAN
    onsets = np.flatnonzero(human & ~np.concatenate([[False], human[:-1]]))
    assert len(onsets) >= 1
    np.testing.assert_array_equal(np.flatnonzero(labels["reward"] == -1.0), onsets)
    assert labels["reward"].sum() == -len(onsets) and labels["done"][-1]


def test_a_reflex_mid_rollout_is_recorded_as_interrupted_and_deployment_goes_on(
    lift_store, tmp_path
):
    """Robot reflex fault: the arm stops itself (here a reflex threshold below the cube's
    weight, so the operator's grasp trips it), the episode is kept as interrupted with the
    reason, the store stays valid, and the next episode starts after ``recover()``."""
    from policies.deploy import DeployConfig, deploy_sim
    from robot_learning.sim.robot import SimServo

    train_tiny(lift_store, tmp_path / "run", "act", steps=2)
    store = tmp_path / "rollouts.zarr"
    report = deploy_sim(
        DeployConfig(
            checkpoint=tmp_path / "run",
            task="lift",
            episodes=2,
            store=store,
            max_duration_s=8.0,
            sim_servo=SimServo(reflex_force_n=0.3),
        ),
        progress=False,
    )
    assert len(report.faults) == 2, report.faults
    assert all("collision reflex" in f for f in report.faults)
    assert report.successes == 0 and report.recorded == [0, 1]
    assert validate(store) == []
    reader = StoreReader(store)
    for i in range(2):
        info = reader.episode(i).info
        assert not info.success
        assert info.notes["interrupted"] and info.notes["stopped_by"] == "fault"
        assert "collision reflex" in info.notes["fault"]
        assert reader.episode(i).length > 0


class BrokenPolicy:
    """The trained policy, until its ``works_for``-th call: then each call raises (a crashed
    model) or, with ``hang`` set, blocks until ``hang`` is set (a hung one)."""

    def __init__(self, policy, works_for: int, hang: threading.Event | None = None) -> None:
        self.policy, self.works_for, self.hang, self.calls = policy, works_for, hang, 0

    def __getattr__(self, name: str):
        return getattr(self.policy, name)

    def act(self, observation):
        self.calls += 1
        if self.calls > self.works_for:
            if self.hang is None:
                raise RuntimeError("CUDA error: an illegal memory access (injected)")
            self.hang.wait(30.0)
        return self.policy.act(observation)


def deploy_broken(monkeypatch, lift_store, tmp_path, *, hang: threading.Event | None):
    from policies import deploy
    from policies.deploy import DeployConfig, deploy_sim

    train_tiny(lift_store, tmp_path / "run", "act", steps=2)
    load = deploy.load_policy
    monkeypatch.setattr(
        deploy, "load_policy", lambda *a, **kw: BrokenPolicy(load(*a, **kw), 1, hang)
    )
    store = tmp_path / "rollouts.zarr"
    config = DeployConfig(
        checkpoint=tmp_path / "run",
        task="lift",
        episodes=1,
        store=store,
        realtime=True,
        operator=False,
        max_duration_s=6.0,
    )
    return deploy_sim(config, progress=False), store


def test_a_policy_that_raises_mid_rollout_ends_the_episode_as_a_fault_and_it_is_kept(
    monkeypatch, lift_store, tmp_path
):
    """A model that crashes (a CUDA error, say) under --realtime: the arm holds, the episode
    is committed as interrupted with the error, and the store stays valid."""
    report, store = deploy_broken(monkeypatch, lift_store, tmp_path, hang=None)
    assert report.recorded == [0] and report.successes == 0
    assert len(report.faults) == 1 and "illegal memory access" in report.faults[0]
    assert validate(store) == []
    notes = StoreReader(store).episode(0).info.notes
    assert notes["interrupted"] is True and notes["stopped_by"] == "fault"
    assert "illegal memory access" in notes["fault"]


def test_a_hung_policy_holds_the_arm_and_the_held_steps_are_recorded(
    monkeypatch, lift_store, tmp_path
):
    """A model that stops answering: after the stall limit the arm holds where it is, every
    held step is recorded as HOLD with both targets (the loop's hold used to drop them, and
    recording then died on the missing policy target), and the episode says it stalled."""
    hang = threading.Event()
    try:
        report, store = deploy_broken(monkeypatch, lift_store, tmp_path, hang=hang)
    finally:
        hang.set()
    assert report.recorded == [0]
    assert any("policy hung" in f for f in report.faults), report.faults
    assert validate(store) == []
    reader = StoreReader(store)
    assert reader.num_episodes == 1
    assert any("policy hung" in s for s in reader.episode(0).info.notes["stalls"])
    data = reader.read_episode(0, keys=[CONTROL_SOURCE, ACTION, POLICY_ACTION, HUMAN_ACTION])
    held = np.flatnonzero(data[CONTROL_SOURCE] == ControlSource.HOLD)
    # the second chunk (at 1 s) never comes: held from 3 s (2 s stall limit) to 6 s
    assert held.size >= 20, data[CONTROL_SOURCE]
    assert np.isfinite(data[POLICY_ACTION][held]).all()
    assert np.isfinite(data[HUMAN_ACTION][held]).all()
    # held: the recorded command is where the arm already is, not a step toward a target
    actions = data[ACTION]
    np.testing.assert_allclose(np.diff(actions[held[-5:], :3], axis=0), 0.0, atol=2e-3)
