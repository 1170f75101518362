"""Fixtures of the graph tests: a fresh DDS domain per test, processes killed afterwards."""

from __future__ import annotations

import pytest

from tests.ros_nodes.graph import Graph, graph_env


@pytest.fixture
def graph(tmp_path, monkeypatch):
    """A Graph whose nodes and this test process share one fresh ROS_DOMAIN_ID on loopback."""
    env = graph_env()
    for key in ("ROS_DOMAIN_ID", "CYCLONEDDS_URI", "ROS_NODES_BACKEND"):
        monkeypatch.setenv(key, env[key])
    g = Graph(tmp_path, env)
    yield g
    for proc in g.procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
