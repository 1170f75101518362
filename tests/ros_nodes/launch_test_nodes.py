"""Small node executables for the launcher's tests: they need no DDS, only their argv.

Registered through ``RL_LAUNCH_EXECUTABLES`` (see ros_nodes.launcher.executables). Each
writes what it received to ``$LAUNCH_TEST_DIR/<node name>.json`` so a test can compare the
command line and parameters with what the launch file says.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml


def _node_name(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "-r" and argv[i + 1].startswith("__node:="):
            return argv[i + 1].split(":=", 1)[1]
    return "unnamed"


def _record(argv: list[str], **extra: object) -> Path:
    params = {}
    for i, arg in enumerate(argv):
        if arg == "--params-file":
            params[argv[i + 1]] = yaml.safe_load(Path(argv[i + 1]).read_text())
    out = Path(os.environ["LAUNCH_TEST_DIR"]) / f"{_node_name(argv)}.json"
    previous = json.loads(out.read_text()) if out.exists() else {"starts": 0}
    out.write_text(
        json.dumps(
            {
                "argv": argv,
                "params": params,
                "pid": os.getpid(),
                "starts": previous["starts"] + 1,
                **extra,
            }
        )
    )
    return out


def wait_for_sigint(argv: list[str]) -> int:
    """Runs until SIGINT, then records that it stopped cleanly."""
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    out = _record(argv)
    print(f"hello from {_node_name(argv)}", flush=True)
    while not stop:
        time.sleep(0.02)
    data = json.loads(out.read_text())
    out.write_text(json.dumps({**data, "stopped_by": "SIGINT"}))
    return 0


def fail(argv: list[str]) -> int:
    """Says something on both streams and exits with code 3."""
    _record(argv)
    print("about to fail", flush=True)
    print("something went wrong", file=sys.stderr, flush=True)
    return 3


def stubborn(argv: list[str]) -> int:
    """Ignores SIGINT and SIGTERM: only SIGKILL ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _record(argv)
    while True:
        time.sleep(0.05)


EXECUTABLES = (
    "listener=tests.ros_nodes.launch_test_nodes:wait_for_sigint,"
    "crasher=tests.ros_nodes.launch_test_nodes:fail,"
    "stubborn=tests.ros_nodes.launch_test_nodes:stubborn"
)
