"""The collection graph as a user starts it: ``rl launch launch/collect_sim.yaml``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.ros_nodes.graph import graph_env, wait_for
from tests.ros_nodes.test_collection_graph import (
    _observer_of_the_cell,
    _recorder_status,
    assert_episodes_match_sources,
)

ROOT = Path(__file__).resolve().parents[2]


def test_rl_launch_collect_sim_records_three_episodes_over_dds(tmp_path, monkeypatch):
    env = graph_env()
    for key in ("ROS_DOMAIN_ID", "CYCLONEDDS_URI", "ROS_NODES_BACKEND"):
        monkeypatch.setenv(key, env[key])
    store = tmp_path / "demos.zarr"
    obs = _observer_of_the_cell()
    wall_start = time.time()
    log = open(tmp_path / "launch.log", "wb")  # noqa: SIM115
    launch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "launch",
            "launch/collect_sim.yaml",
            f"store:={store}",
            "episodes:=3",
            "width:=160",
            "height:=120",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: _recorder_status(obs).get("committed", 0) >= 3,
            150,
            "3 committed episodes",
            None,
        )
        launch.send_signal(signal.SIGINT)  # Ctrl-C: every node shuts down cleanly
        assert launch.wait(timeout=60) == 0, (tmp_path / "launch.log").read_text()[-3000:]
    finally:
        obs.close()
        if launch.poll() is None:
            launch.kill()
    wall_end = time.time()
    text = (tmp_path / "launch.log").read_text(errors="replace")
    for node in ("sim", "teleop", "recorder"):
        assert f"[{node}]" in text, f"no output of {node} in the launch log"
    assert_episodes_match_sources(store, obs, 3, wall_start, wall_end)
