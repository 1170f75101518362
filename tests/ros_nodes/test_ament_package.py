"""The colcon/ament build installs what ``ros2 launch robot_learning FILE`` looks for.

ROS 2 cannot be installed here, so CMake runs with a stand-in ament_cmake (ament_stub/)
that does what ament_package() does for the install tree; the CMakeLists.txt, package.xml,
wrappers and launch-file installation are the real ones a lab's colcon build uses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ros_nodes.launcher.executables import EXTRA_EXECUTABLES_ENV
from tests.ros_nodes.launch_test_nodes import EXECUTABLES

ROOT = Path(__file__).resolve().parents[2]
STUB = Path(__file__).with_name("ament_stub")

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")


def test_install_tree_has_launch_files_package_marker_and_node_wrappers(tmp_path):
    build, prefix = tmp_path / "build", tmp_path / "install"
    subprocess.run(
        [
            "cmake",
            "-S",
            str(ROOT),
            "-B",
            str(build),
            f"-Dament_cmake_DIR={STUB}",
            f"-DRL_PYTHON={sys.executable}",
            "-DRL_NODE_EXECUTABLES=sim_node;listener",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        ["cmake", "--install", str(build), "--prefix", str(prefix)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    share = prefix / "share" / "robot_learning"
    assert (share / "package.xml").is_file()
    assert (prefix / "share/ament_index/resource_index/packages/robot_learning").is_file()
    shipped = sorted(p.name for p in (ROOT / "launch").glob("*.yaml"))
    assert sorted(p.name for p in (share / "launch").glob("*.yaml")) == shipped
    wrappers = prefix / "lib" / "robot_learning"
    assert sorted(p.name for p in wrappers.iterdir()) == ["listener", "sim_node"]
    assert os.access(wrappers / "sim_node", os.X_OK)
    # A wrapper runs the pip-installed node with the arguments ros2 launch passes.
    env = {
        **os.environ,
        EXTRA_EXECUTABLES_ENV: EXECUTABLES,
        "LAUNCH_TEST_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    node = subprocess.Popen(
        [wrappers / "listener", "--ros-args", "-r", "__node:=wrapped"], env=env, cwd=tmp_path
    )
    record = tmp_path / "wrapped.json"
    deadline = time.monotonic() + 30
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    node.send_signal(2)
    assert node.wait(timeout=30) == 0
    assert json.loads(record.read_text())["argv"] == ["--ros-args", "-r", "__node:=wrapped"]


def test_every_registered_node_gets_an_ament_wrapper() -> None:
    """A node added to pyproject's entry points but not to CMakeLists.txt would be missing
    from `ros2 run` / `ros2 launch` on a ROS 2 machine."""
    import re
    from importlib.metadata import entry_points

    text = (ROOT / "CMakeLists.txt").read_text()
    listed = set(re.search(r"set\(RL_NODE_EXECUTABLES([^)]*?)CACHE", text, re.S).group(1).split())
    registered = {ep.name for ep in entry_points(group="robot_learning.ros_nodes")}
    assert registered <= listed, f"missing from CMakeLists.txt: {sorted(registered - listed)}"
