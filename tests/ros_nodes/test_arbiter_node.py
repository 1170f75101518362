"""arbiter_node's tick in this process: deadman and emergency-stop button, command stamps.

The node is real (a DDS participant on a fresh domain); its inputs are handed to the same
callbacks the subscriptions call, and what it publishes is read off its publishers, so every
tick is checked without timing races.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_learning.runtime import ActionChunk
from ros_nodes import convert, msgs
from ros_nodes.arbiter_node import ArbiterNode
from ros_nodes.runtime import create_node
from ros_nodes.topics import JoyButton

DEADMAN, ESTOP = 6, 7
ROOT = Path(__file__).resolve().parents[2]


class Sent:
    """Stands in for a publisher (records what the node would put on the wire)."""

    def __init__(self) -> None:
        self.messages: list[object] = []

    def publish(self, msg: object) -> None:
        self.messages.append(msg)


@pytest.fixture
def arbiter(monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "231")
    node = create_node(
        "arbiter",
        [
            "--ros-args",
            "-p",
            "limits:=fr3_sim",
            "-p",
            f"deadman_button:={DEADMAN}",
            "-p",
            f"estop_button:={ESTOP}",
        ],
    )
    arb = ArbiterNode(node)
    arb._target, arb._gripper, arb._status = Sent(), Sent(), Sent()
    yield arb
    node.close()


def _joy(now: float, *held: int) -> msgs.Joy:
    buttons = [0] * 8
    for i in held:
        buttons[i] = 1
    return msgs.Joy(header=convert.header(now, ""), axes=[0.0] * 6, buttons=buttons)


def _ready(arb: ArbiterNode, now: float) -> None:
    arb._on_pose(convert.pose_stamped(np.array([0.5, 0.0, 0.3]), np.array([1.0, 0, 0, 0]), now))
    arb._on_policy_status(
        msgs.String(
            data=json.dumps(
                {
                    "ready": True,
                    "checkpoint": "ckpt",
                    "replan_period_s": 0.5,
                    "execution": {
                        "execute_steps": 5,
                        "temporal_ensemble_k": None,
                        "interpolate": True,
                    },
                }
            )
        )
    )


def _publish_chunk(arb: ArbiterNode, start_s: float) -> None:
    rows = np.tile(np.r_[0.5, 0.0, 0.3, 1.0, 0, 0, 0, 0.0], (10, 1))
    rows[:, 0] += 0.02 * np.arange(10)  # 0.2 m/s along x
    poses, fingers = convert.chunk_messages(
        ActionChunk.from_vectors(start_s + 0.1 * np.arange(10), rows)
    )
    arb._on_chunk_part("poses", poses)
    arb._on_chunk_part("fingers", fingers)


def _tick(arb: ArbiterNode) -> dict:
    assert arb._pose is not None
    pose = convert.pose_vector(arb._pose)  # the arm stays put; its pose is freshly stamped
    arb._on_pose(convert.pose_stamped(pose[:3], pose[3:], arb.node.now_s()))
    arb._tick()
    return json.loads(arb._status.messages[-1].data)


def test_the_policy_moves_the_arm_only_while_the_deadman_is_held(arbiter):
    now = arbiter.node.now_s()
    _ready(arbiter, now)
    arbiter._on_joy(_joy(now, JoyButton.START))
    assert arbiter.active
    _publish_chunk(arbiter, arbiter.node.now_s())
    status = _tick(arbiter)
    assert status["source"] == "policy" and "deadman_released" in status["events"]
    assert status["sent"][:3] == pytest.approx([0.5, 0.0, 0.3])  # held at the measured pose
    arbiter._on_joy(_joy(now, DEADMAN))
    status = _tick(arbiter)
    assert "deadman_released" not in status["events"]
    assert status["sent"][0] > 0.5, "the chunk's motion along x reaches the arm"
    target = arbiter._target.messages[-1]
    assert convert.stamp_s(target) == pytest.approx(status["stamp"])
    assert abs(convert.stamp_s(target) - arbiter.node.now_s()) < 0.05


def test_the_estop_button_latches_until_the_topic_releases_it(arbiter):
    now = arbiter.node.now_s()
    _ready(arbiter, now)
    arbiter._on_joy(_joy(now, JoyButton.START, DEADMAN))
    _publish_chunk(arbiter, arbiter.node.now_s())
    arbiter._on_joy(_joy(now, DEADMAN, ESTOP))
    arbiter._on_joy(_joy(now, DEADMAN))  # button let go: still latched
    for _ in range(3):
        status = _tick(arbiter)
        assert "emergency_stop" in status["events"] and "joy button 7" in status["estop"]
    arbiter._on_estop(msgs.Bool(data=False))
    status = _tick(arbiter)
    assert status["estop"] is None and "emergency_stop" not in status["events"]
    assert status["safety"]["emergency_stop"] == 3


def _deploy_arbiter_argv(keep: Path, *launch_args: str) -> list[str]:
    """The arbiter's ``--ros-args ...`` as ``rl launch --print launch/deploy.yaml`` gives it
    (its parameter files moved into ``keep``, --print's temporary folder removed)."""
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "launch",
            "--print",
            "launch/deploy.yaml",
            "checkpoint:=runs/act/checkpoint",
            *launch_args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    (line,) = [ln for ln in printed.stdout.splitlines() if ln.startswith("arbiter: ")]
    command = shlex.split(line.removeprefix("arbiter: "))
    argv = command[command.index("--ros-args") :]
    printed_dir = Path(argv[argv.index("--params-file") + 1]).parent
    keep.mkdir(exist_ok=True)
    for i, arg in enumerate(argv):
        if arg == "--params-file":
            argv[i + 1] = shutil.copy(argv[i + 1], keep)
    shutil.rmtree(printed_dir)
    return argv


def test_deploy_launch_buttons_default_and_documented_deadman_start_the_arbiter(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("ROS_DOMAIN_ID", "231")
    argv = _deploy_arbiter_argv(tmp_path / "default")
    node = create_node("arbiter", argv)
    try:
        arb = ArbiterNode(node)
        assert (arb.intervene_button, arb.deadman_button, arb.estop_button) == (1, -1, -1)
    finally:
        node.close()
    with pytest.raises(ValueError, match="deadman_button:=1 intervene_button:=-1"):
        node = create_node("arbiter", _deploy_arbiter_argv(tmp_path / "clash", "deadman_button:=1"))
        try:
            ArbiterNode(node)
        finally:
            node.close()
    # the documented deadman on a two-button SpaceMouse: right button held (Joy 1)
    node = create_node(
        "arbiter",
        _deploy_arbiter_argv(tmp_path / "deadman", "deadman_button:=1", "intervene_button:=-1"),
    )
    try:
        arb = ArbiterNode(node)
        arb._target, arb._gripper, arb._status = Sent(), Sent(), Sent()
        now = node.now_s()
        _ready(arb, now)
        arb._on_joy(_joy(now, JoyButton.START))
        _publish_chunk(arb, node.now_s())
        assert "deadman_released" in _tick(arb)["events"], "right button up: the arm holds"
        arb._on_joy(_joy(now, JoyButton.INTERVENE))  # the right button held
        status = _tick(arb)
        assert status["source"] == "policy", "holding the deadman is not a takeover"
        assert "deadman_released" not in status["events"] and status["sent"][0] > 0.5
    finally:
        node.close()
