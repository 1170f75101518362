"""The launch files: strict launch_ros keys, our executables, declared parameters."""

from __future__ import annotations

import importlib
import inspect
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
NODE_KEYS = {"pkg", "exec", "name", "namespace", "param", "remap", "output", "respawn",
             "respawn_delay", "if", "unless", "args", "ros_args"}
ARG_KEYS = {"name", "default", "description"}


def _nodes(doc: dict) -> list[dict]:
    return [entry["node"] for entry in doc["launch"] if "node" in entry]


@pytest.mark.parametrize("name", ["collect_sim.yaml", "collect_teleop.yaml", "deploy.yaml",
                                  "deploy_sim.yaml"])
def test_launch_file_uses_our_nodes_and_their_parameters(name):
    doc = yaml.safe_load((LAUNCH / name).read_text())
    execs = {ep.name: ep for ep in entry_points(group="robot_learning.ros_nodes")}
    args = {entry["arg"]["name"] for entry in doc["launch"] if "arg" in entry}
    for entry in doc["launch"]:
        (kind,) = entry
        assert kind in ("arg", "node"), kind
        if kind == "arg":
            assert set(entry["arg"]) <= ARG_KEYS and entry["arg"].get("description")
    for node in _nodes(doc):
        assert set(node) <= NODE_KEYS, set(node) - NODE_KEYS
        assert node["pkg"] == "robot_learning"
        assert node["exec"] in execs, f"{node['exec']} is not a registered executable"
        module = importlib.import_module(execs[node["exec"]].value.split(":")[0])
        source = inspect.getsource(module)
        declared = set(re.findall(r'\bp\(\s*"([a-z_]+)"', source))
        for param in node.get("param", []):
            assert set(param) == {"name", "value"}
            assert param["name"] in declared, f"{node['exec']} declares no {param['name']!r}"
            for used in re.findall(r"\$\(var (\w+)\)", str(param["value"])):
                assert used in args, f"$(var {used}) is not an arg of {name}"


@pytest.mark.parametrize("name", ["deploy.yaml", "deploy_sim.yaml"])
def test_deploy_graph_has_one_command_publisher_and_records_the_arbiter(name):
    nodes = {node["exec"]: node for node in _nodes(yaml.safe_load((LAUNCH / name).read_text()))}
    assert {"policy_node", "arbiter_node", "teleop_node", "recorder_node"} <= set(nodes)
    assert ("franka_node" in nodes) != ("sim_node" in nodes)

    def params(exec_name: str) -> dict:
        return {p["name"]: p["value"] for p in nodes[exec_name].get("param", [])}

    # teleop_node would publish /franka/target_pose too: the command guard would hold the arm
    assert params("teleop_node")["publish_target"] is False
    assert params("recorder_node")["arbiter"] is True
    assert params("policy_node")["checkpoint"] == "$(var checkpoint)"
    assert params("arbiter_node")["limits"] == ("fr3_sim" if "sim_node" in nodes else "fr3")
