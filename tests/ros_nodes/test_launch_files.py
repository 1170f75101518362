"""The launch files: strict launch_ros keys, our executables, declared parameters."""

from __future__ import annotations

import importlib
import inspect
import re
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
NODE_KEYS = {
    "pkg",
    "exec",
    "name",
    "namespace",
    "param",
    "remap",
    "output",
    "respawn",
    "respawn_delay",
    "if",
    "unless",
    "args",
    "ros_args",
}
ARG_KEYS = {"name", "default", "description"}


def _nodes(doc: dict) -> list[dict]:
    return [entry["node"] for entry in doc["launch"] if "node" in entry]


@pytest.mark.parametrize(
    "name",
    [
        "collect_sim.yaml",
        "collect_teleop.yaml",
        "deploy.yaml",
        "deploy_sim.yaml",
        "calibrate.yaml",
        "calibrate_sim.yaml",
        "human_capture.yaml",
        "human_capture_sim.yaml",
    ],
)
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


@pytest.mark.parametrize("name", ["calibrate.yaml", "calibrate_sim.yaml"])
def test_calibration_graph_has_one_command_publisher_and_boards_its_cameras_can_see(name):
    nodes = _nodes(yaml.safe_load((LAUNCH / name).read_text()))
    execs = [node["exec"] for node in nodes]
    # calibration_node sends the poses: another command publisher would put the arm on hold
    assert not {"teleop_node", "policy_node", "arbiter_node"} & set(execs)
    assert ("franka_node" in execs) != ("sim_node" in execs)

    def params(node: dict) -> dict:
        return {p["name"]: p["value"] for p in node.get("param", [])}

    calibrations = [n for n in nodes if n["exec"] == "calibration_node"]
    published = {n["name"] for n in nodes if n["exec"] == "camera_node"}
    if "sim_node" in execs:
        (sim,) = (n for n in nodes if n["exec"] == "sim_node")
        published = set(params(sim)["cameras"])
        boards = set(params(sim)["boards"].split(","))
    for node in calibrations:
        values = params(node)
        on_hand = "wrist" in values["cameras"]
        assert values["board"] == ("table" if on_hand else "gripper")
        assert set(values["cameras"]) <= published
        if "sim_node" in execs:
            assert values["board"] in boards


@pytest.mark.parametrize(
    ("args", "cameras"),
    [
        ([], ["front"]),
        (["side:=true"], ["front", "side"]),
        (["wrist:=true"], ["wrist"]),
        (["wrist:=true", "side:=true"], ["wrist"]),
    ],
)
def test_calibrate_launch_starts_one_session_for_the_cameras_it_starts(args, cameras):
    """``rl launch --print`` (the launcher's own conditions and substitutions): one
    calibration_node per run, for exactly the cameras whose camera_node runs."""
    serials = {"front": "_11", "side": "_22", "wrist": "_33"}
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "launch",
            "--print",
            str(LAUNCH / "calibrate.yaml"),
            *(f"{c}_serial:={s}" for c, s in serials.items()),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    commands = dict(line.split(": ", 1) for line in printed.stdout.splitlines())
    files = {
        name: [Path(a) for prev, a in pairwise(shlex.split(c)) if prev == "--params-file"]
        for name, c in commands.items()
    }
    params: dict = {}
    for path in files["calibration"]:
        params |= yaml.safe_load(path.read_text())["/**"]["ros__parameters"]
    shutil.rmtree(files["calibration"][0].parent)  # --print leaves them for the user
    assert sorted(set(commands) & set(serials)) == cameras
    assert params["cameras"] == cameras
    assert params["serials"] == ",".join(f"{c}={serials[c]}" for c in cameras)
    assert params["board"] == ("table" if cameras == ["wrist"] else "gripper")


@pytest.mark.parametrize("name", ["human_capture.yaml", "human_capture_sim.yaml"])
def test_human_capture_graph_records_the_cameras_it_starts_and_needs_no_robot(name):
    nodes = _nodes(yaml.safe_load((LAUNCH / name).read_text()))

    def params(node: dict) -> dict:
        return {p["name"]: p["value"] for p in node.get("param", [])}

    by_exec = {node["exec"]: node for node in nodes}
    assert "franka_node" not in by_exec and "recorder_node" not in by_exec
    published = {n["name"] for n in nodes if n["exec"] == "camera_node"}
    if "sim_node" in by_exec:
        published = set(params(by_exec["sim_node"])["cameras"])
    capture = params(by_exec["human_capture_node"])
    assert len(capture["cameras"]) == 2 and set(capture["cameras"]) <= published
    if "sim_node" not in by_exec:  # the real station: buttons only, nothing moves an arm
        teleop = params(by_exec["teleop_node"])
        assert teleop["publish_target"] is False and teleop["wait_for_robot"] is False
