"""``rl deploy --sim``: a checkpoint in control, a simulated operator taking over, and every
rollout recorded with who was in control."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from robot_learning.keys import ACTION, CONTROL_SOURCE, HUMAN_ACTION, POLICY_ACTION
from robot_learning.runtime.controllers import ControlSource
from robot_learning.store import StoreReader
from robot_learning.store.validate import validate
from tests.policies.test_training import train_tiny

ROOT = Path(__file__).resolve().parents[2]


def test_rl_deploy_records_policy_and_intervention_episodes(lift_store, tmp_path):
    """A barely trained policy goes nowhere; the simulated operator takes over and the
    recorded steps say who was in control, with both actions."""
    train_tiny(lift_store, tmp_path / "run", "diffusion", steps=2)
    store = tmp_path / "rollouts.zarr"
    result = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "deploy", "--sim", "--checkpoint",
         str(tmp_path / "run"), "--task", "lift", "--episodes", "2", "--store", str(store),
         "--max-duration", "6", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["episodes"] == 2 and report["interventions"] >= 1
    assert report["recorded"] == [0, 1]
    assert validate(store) == []
    reader = StoreReader(store)
    infos = [reader.episode(i).info for i in range(2)]
    assert {info.source for info in infos} <= {"policy", "intervention"}
    assert "intervention" in {info.source for info in infos}
    assert all(len(info.notes["checkpoint_sha256"]) == 64 for info in infos)
    ep = next(i for i, info in enumerate(infos) if info.source == "intervention")
    data = reader.read_episode(ep, keys=[CONTROL_SOURCE, ACTION, POLICY_ACTION, HUMAN_ACTION])
    sources = data[CONTROL_SOURCE]
    human = sources == ControlSource.HUMAN
    assert human.any() and (sources != ControlSource.HUMAN).any()
    # while the human was in control, the executed action is the human's
    np.testing.assert_allclose(data[ACTION][human][:, :3], data[HUMAN_ACTION][human][:, :3],
                               atol=0.08 + 1e-6)  # within the safety filter's lead bound
    assert np.isfinite(data[POLICY_ACTION]).all()
    assert reader.episode(ep).info.notes["takeovers"]


def test_rl_deploy_refuses_a_training_seed(lift_store, tmp_path):
    train_tiny(lift_store, tmp_path / "run", "act", steps=2)
    result = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "deploy", "--sim", "--checkpoint",
         str(tmp_path / "run"), "--task", "lift", "--episodes", "1", "--seed", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "were used by training" in result.stderr
