"""``rl launch``: real processes started from YAML launch files, supervised and stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ros_nodes.launcher import LaunchError, load
from ros_nodes.launcher.executables import EXTRA_EXECUTABLES_ENV, find_package_share
from ros_nodes.launcher.substitutions import Scope, evaluate
from tests.ros_nodes.launch_test_nodes import EXECUTABLES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv(EXTRA_EXECUTABLES_ENV, EXECUTABLES)
    monkeypatch.setenv("LAUNCH_TEST_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def start(file: Path, *args: str, timeouts: float = 5.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "launch",
            str(file),
            *args,
            "--sigterm-timeout",
            str(timeouts),
            "--sigkill-timeout",
            str(timeouts),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(paths: list[Path], timeout_s: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(p.exists() for p in paths):
            try:
                return [json.loads(p.read_text()) for p in paths]
            except json.JSONDecodeError:  # being written
                pass
        time.sleep(0.05)
    raise AssertionError(f"nodes never started: {[p.name for p in paths if not p.exists()]}")


GRAPH = """\
    launch:
    - arg: {name: robot_ns, default: franka, description: namespace of the robot}
    - arg: {name: rate, description: camera rate in Hz}
    - arg: {name: with_wrist, default: "true"}
    - let: {name: topic_root, value: /camera/$(var robot_ns)}
    - node:
        pkg: robot_learning
        exec: listener
        name: front
        namespace: camera
        output: screen
        param:
        - {name: rate_hz, value: $(var rate)}
        - {name: serial, value: "_0123"}
        - {name: size, value: [480, 640]}
        - {name: color, param: [{name: enabled, value: true}, {name: format, value: rgb8}]}
        - {from: $(dirname)/params.yaml}
        remap:
        - {from: image, to: $(var topic_root)/color/image_raw}
    - node:
        pkg: robot_learning
        exec: listener
        name: wrist
        if: $(var with_wrist)
    - node:
        pkg: robot_learning
        exec: listener
        name: never
        unless: $(eval "$(var rate) > 1")
    - group:
        children:
        - push_ros_namespace: {namespace: $(var robot_ns)}
        - let: {name: rate, value: "999"}
        - include:
            file: bridge.yaml
            arg: [{name: mode, value: sim}]
    - node: {pkg: robot_learning, exec: listener, name: after_group,
             param: [{name: rate_hz, value: $(var rate)}]}
"""
BRIDGE = """\
    launch:
    - arg: {name: mode}
    - node: {pkg: robot_learning, exec: listener, name: bridge_$(var mode),
             param: [{name: rate_hz, value: $(var rate)}]}
    - node: {pkg: robot_learning, exec: listener, name: absolute, namespace: /top}
"""


def test_graph_starts_one_process_per_node_with_ros_arguments_and_stops_on_sigint(env):
    write(env / "params.yaml", "/**:\n  ros__parameters:\n    exposure: 12\n")
    write(env / "bridge.yaml", BRIDGE)
    launch = start(write(env / "graph.yaml", GRAPH), "rate:=30")
    names = ["front", "wrist", "bridge_sim", "absolute", "after_group"]
    try:
        front, wrist, bridge, absolute, after = wait_for([env / f"{n}.json" for n in names])
    finally:
        time.sleep(0.3)
        launch.send_signal(signal.SIGINT)
        out, err = launch.communicate(timeout=30)
    assert launch.returncode == 0, err
    assert not (env / "never.json").exists()  # unless: $(eval "30 > 1")
    # The command line launch_ros builds: name, namespace, parameter files (one per 'param'
    # entry, in order), then remaps.
    argv = front["argv"]
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--params-file"]
    assert argv == [
        "--ros-args",
        "-r",
        "__node:=front",
        "-r",
        "__ns:=/camera",
        *[x for f in files for x in ("--params-file", f)],
        "-r",
        "image:=/camera/franka/color/image_raw",
    ]
    assert len(files) == 5 and files[4] == str(env / "params.yaml")
    merged = {}
    for f in files[:4]:
        merged.update(front["params"][f]["/camera/front"]["ros__parameters"])
    assert merged == {
        "rate_hz": 30,
        "serial": "_0123",
        "size": [480, 640],
        "color.enabled": True,
        "color.format": "rgb8",
    }
    assert wrist["argv"] == ["--ros-args", "-r", "__node:=wrist"]
    # Group: pushed namespace and 'let' stay inside; included file sees both.
    assert bridge["argv"][:5] == ["--ros-args", "-r", "__node:=bridge_sim", "-r", "__ns:=/franka"]
    assert list(bridge["params"].values())[0]["/franka/bridge_sim"]["ros__parameters"] == {
        "rate_hz": 999
    }
    assert absolute["argv"] == ["--ros-args", "-r", "__node:=absolute", "-r", "__ns:=/top"]
    assert list(after["params"].values())[0]["/**"]["ros__parameters"] == {"rate_hz": 30}
    # Clean shutdown: every node got SIGINT and exited by itself.
    for name in names:
        assert json.loads((env / f"{name}.json").read_text())["stopped_by"] == "SIGINT"
    assert "[front] hello from front" in out  # output: screen, prefixed
    assert "hello from wrist" not in out  # output: log (default): stdout to the log file only
    assert "SIGINT to front, wrist" in err


def test_dead_node_is_reported_with_name_and_exit_code(env):
    file = write(
        env / "crash.yaml",
        """\
        launch:
        - node: {pkg: robot_learning, exec: crasher, name: camera, output: screen}
        - node: {pkg: robot_learning, exec: listener, name: recorder}
    """,
    )
    launch = start(file)
    wait_for([env / "camera.json", env / "recorder.json"])
    time.sleep(0.5)
    launch.send_signal(signal.SIGTERM)
    out, err = launch.communicate(timeout=30)
    assert "node 'camera' (crasher) exited with code 3" in err
    assert "[camera] about to fail" in out and "[camera] something went wrong" in err
    assert "nodes that failed: camera exit code 3" in err
    assert launch.returncode == 1
    assert json.loads((env / "recorder.json").read_text())["stopped_by"] == "SIGINT"


def test_respawn_restarts_a_dead_node_after_its_delay(env):
    file = write(
        env / "respawn.yaml",
        """\
        launch:
        - node: {pkg: robot_learning, exec: crasher, name: flaky, respawn: "true",
                 respawn_delay: 0.2}
    """,
    )
    launch = start(file)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = env / "flaky.json"
        if record.exists() and json.loads(record.read_text() or '{"starts": 0}')["starts"] >= 3:
            break
        time.sleep(0.05)
    launch.send_signal(signal.SIGINT)
    _, err = launch.communicate(timeout=30)
    assert json.loads((env / "flaky.json").read_text())["starts"] >= 3
    assert "node 'flaky' exited with code 3; respawning in 0.2 s" in err
    assert "respawned 'flaky'" in err


def test_node_ignoring_sigint_and_sigterm_is_killed(env):
    file = write(
        env / "stubborn.yaml",
        """\
        launch:
        - node: {pkg: robot_learning, exec: stubborn, name: stuck}
    """,
    )
    launch = start(file, timeouts=0.5)
    (record,) = wait_for([env / "stuck.json"])
    launch.send_signal(signal.SIGINT)
    _, err = launch.communicate(timeout=30)
    assert "stuck still running: sending SIGTERM" in err
    assert "stuck still running: sending SIGKILL" in err
    assert f"node 'stuck' stopped (exit code {-signal.SIGKILL})" in err
    with pytest.raises(ProcessLookupError):
        os.kill(record["pid"], 0)


@pytest.mark.parametrize(
    ("body", "args", "message"),
    [
        ("- arg: {name: rate}\n", {}, "required launch argument 'rate' was not given"),
        (
            "- arg: {name: rate, default: '1'}\n",
            {"rte": "2"},
            "unknown launch argument(s) rte; this file declares: rate",
        ),
        (
            "- node: {pkg: robot_learning, executable: listener}\n",
            {},
            "unexpected attribute(s) 'executable' (did you mean 'exec'?)",
        ),
        (
            "- node: {pkg: robot_learning, exec: listener, ns: cam}\n",
            {},
            "unexpected attribute(s) 'ns' (did you mean 'namespace'?)",
        ),
        (
            "- node: {pkg: robot_learning, exec: no_such_node}\n",
            {},
            "package 'robot_learning' has no executable 'no_such_node' (known: ",
        ),
        (
            "- node: {pkg: realsense2_camera, exec: realsense2_camera_node}\n",
            {},
            "package 'realsense2_camera' is unknown to rl launch",
        ),
        ("- include: {file: missing.yaml}\n", {}, "missing.yaml (included from"),
        ("- executable: {cmd: ls}\n", {}, "unknown action 'executable'"),
        (
            "- node: {pkg: robot_learning, exec: listener, if: maybe}\n",
            {},
            "'maybe' is not a truth",
        ),
        (
            "- let: {name: x, value: $(eval \"__import__('os').system('true')\")}\n",
            {},
            "$(eval) allows literals, arithmetic, comparisons and and/or/not only",
        ),
        ("- let: {name: x, value: $(var nope)}\n", {}, "'$(var nope)' names no launch argument"),
    ],
)
def test_bad_launch_files_fail_with_a_clear_error(env, body, args, message):
    file = write(env / "bad.yaml", "launch:\n" + body)
    with pytest.raises(LaunchError) as error:
        load(file, args)
    assert message in str(error.value)
    assert "bad.yaml" in str(error.value)


def test_missing_file_and_bad_arguments_on_the_command_line(env):
    result = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "launch", str(env / "nope.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and f"launch file {env / 'nope.yaml'} not found" in result.stderr
    file = write(
        env / "one.yaml",
        "launch:\n- arg: {name: rate, default: '1'}\n"
        "- node: {pkg: robot_learning, exec: listener}\n",
    )
    result = subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", "launch", str(file), "rate=3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "'rate=3' is not name:=value" in result.stderr


def test_substitutions_nest_and_read_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOT_NAME", "fr3")
    scope = Scope({"fr3_ip": "172.16.0.2", "n": "2"}, tmp_path / "x.yaml", find_package_share)
    assert evaluate("$(var $(env ROBOT_NAME)_ip)", scope, "t") == "172.16.0.2"
    assert evaluate("$(env UNSET_VAR_XYZ 'a b')/c", scope, "t") == "a b/c"
    assert evaluate("$(eval $(var n) * 3 + 1)", scope, "t") == "7"
    assert evaluate("$(eval \"'$(env ROBOT_NAME)' in ['fr3', 'panda']\")", scope, "t") == "True"
    assert evaluate("$(and $(not false) $(equals $(var n) 2))", scope, "t") == "true"
    assert evaluate("$(find-pkg-share robot_learning)/launch", scope, "t") == f"{ROOT}/launch"
    with pytest.raises(LaunchError, match="UNSET_VAR_XYZ.*is not set"):
        evaluate("$(env UNSET_VAR_XYZ)", scope, "t")
