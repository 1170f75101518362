"""Start ros_nodes executables as separate processes, the way ``ros2 launch`` runs them.

Each node is its own Python process with the standard command line
``<exec> --ros-args -r __node:=NAME -r __ns:=/NS --params-file FILE -p k:=v -r from:=to``.
All processes of one graph share a fresh ROS_DOMAIN_ID, so graphs of parallel test runs on
this machine never see each other; DDS stays on loopback (the runtime's default config).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ros_nodes.runtime.dds import LOOPBACK_CONFIG


def graph_env(domain_id: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else random.randint(1, 200))
    env["CYCLONEDDS_URI"] = LOOPBACK_CONFIG
    env["ROS_NODES_BACKEND"] = "dds"
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def node_command(
    executable: str,
    *,
    name: str,
    namespace: str = "/",
    params: dict[str, Any] | None = None,
    params_file: Path | None = None,
    remaps: dict[str, str] | None = None,
) -> list[str]:
    cmd = [
        sys.executable,
        "-c",
        f"from ros_nodes.{executable} import main; raise SystemExit(main())",
        "--ros-args",
        "-r",
        f"__node:={name}",
        "-r",
        f"__ns:={namespace}",
    ]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for key, value in (params or {}).items():
        cmd += ["-p", f"{key}:={json.dumps(value) if not isinstance(value, str) else value}"]
    for src, dst in (remaps or {}).items():
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


class Graph:
    """Processes of one graph; logs go to files under ``log_dir``."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopped: set[str] = set()  # stopped on purpose: not a failure when they are gone

    def start(self, executable: str, name: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        params = kwargs.pop("params", None)
        params_file = None
        if params:
            params_file = self.log_dir / f"{name}.params.yaml"
            params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": params}}))
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (lives with the process)
        proc = subprocess.Popen(
            node_command(executable, name=name, params_file=params_file, **kwargs),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> int:
        proc = self.procs[name]
        self.stopped.add(name)
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"{name} did not stop within {timeout_s} s on {sig}:\n{self.log(name)[-3000:]}"
            ) from None

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for name in reversed(list(self.procs)):
            if self.procs[name].poll() is None:
                codes[name] = self.stop(name)
            else:
                codes[name] = self.procs[name].returncode
        return codes

    def assert_alive(self) -> None:
        for name, proc in self.procs.items():
            if name not in self.stopped and proc.poll() is not None:
                raise AssertionError(
                    f"node {name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}"
                )


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    graph: Graph | None = None,
    poll_s: float = 0.1,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if graph is not None:
            graph.assert_alive()
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
