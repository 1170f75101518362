"""Backend choice under a sourced ROS 2 whose rclpy is built for another Python.

Humble's rclpy is built for Python 3.10, Jazzy's for 3.12; sourcing either puts its rclpy on
``PYTHONPATH``, where this project's 3.11 finds the package but cannot load its compiled
core. The stand-in below fails the same way: its ``__init__`` imports a C extension present
only under another ABI tag (``cpython-310``), so ``import rclpy`` raises a real
ModuleNotFoundError in this interpreter. Each check runs in a fresh process, as a node does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "from ros_nodes.runtime import backend_name, create_node; "
    "print(backend_name()); node = create_node('probe', []); "
    "print(type(node).__name__); node.close()"
)


def _ros_site_packages(tmp_path: Path, *, loadable: bool) -> Path:
    """A site-packages dir with an ``rclpy`` package as a sourced distribution has it."""
    site = tmp_path / ("loadable" if loadable else "humble") / "site-packages"
    pkg = site / "rclpy"
    pkg.mkdir(parents=True)
    if loadable:  # an rclpy built for this Python: imports (and is not used further here)
        (pkg / "__init__.py").write_text("def init(args=None):\n    pass\n")
    else:  # Humble's layout: the pybind11 core compiled for CPython 3.10 only
        (pkg / "__init__.py").write_text("from rclpy._rclpy_pybind11 import *  # noqa\n")
        (pkg / "_rclpy_pybind11.cpython-310-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    return site


def _run(code: list[str], site: Path, backend: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ROS_NODES_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(":")
    env["ROS_DOMAIN_ID"] = "229"
    if backend is not None:
        env["ROS_NODES_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, *code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_an_rclpy_for_another_python_is_passed_over_for_dds_with_the_reason(tmp_path):
    site = _ros_site_packages(tmp_path, loadable=False)
    probe = _run(["-c", PROBE], site, backend=None)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["dds", "DdsNode"]
    assert "does not import in Python 3.11" in probe.stderr
    assert "rclpy._rclpy_pybind11" in probe.stderr, "the import error itself is shown"
    assert str(site / "rclpy") in probe.stderr, "and where that rclpy lives"


def test_a_forced_rclpy_that_cannot_import_stops_the_node_with_a_clear_message(tmp_path):
    site = _ros_site_packages(tmp_path, loadable=False)
    node = _run(
        [
            "-c",
            "from ros_nodes.teleop_node import main; raise SystemExit(main())",
            "--ros-args",
            "-r",
            "__node:=teleop",
            "-p",
            "device:=scripted",
        ],
        site,
        backend="rclpy",
    )
    assert node.returncode == 2, node.stderr
    assert "ROS_NODES_BACKEND=rclpy, but rclpy does not import in Python 3.11" in node.stderr
    assert "rclpy._rclpy_pybind11" in node.stderr
    assert "set ROS_NODES_BACKEND=dds" in node.stderr
    assert "Traceback" not in node.stderr


def test_an_rclpy_that_imports_is_chosen_and_dds_can_still_be_forced(tmp_path):
    site = _ros_site_packages(tmp_path, loadable=True)
    code = ["-c", "from ros_nodes.runtime import backend_name; print(backend_name())"]
    assert _run(code, site, backend=None).stdout.split() == ["rclpy"]
    assert _run(code, site, backend="dds").stdout.split() == ["dds"]
    assert _run(code, site, backend="rclpy").stdout.split() == ["rclpy"]
