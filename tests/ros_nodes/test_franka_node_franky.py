"""franka_node robot:=franky: the bridge over franky, talking libfranka to a franky-sim FR3 on
127.0.0.1, in its own process; commands and state over DDS."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from robot_learning.sim.franky_server import FrankySimServer  # noqa: E402
from robot_learning.sim.scene import HOME_JOINTS_RAD  # noqa: E402
from ros_nodes import convert, msgs, topics  # noqa: E402
from ros_nodes.runtime import LATCHED, SENSOR_DATA  # noqa: E402
from tests.ros_nodes.graph import wait_for  # noqa: E402
from tests.ros_nodes.observer import Observer  # noqa: E402


def test_franka_node_on_franky_sim_tracks_targets_homes_and_publishes_franka_ros2_state(graph):
    with FrankySimServer(host="127.0.0.1") as server:
        obs = Observer()
        obs.collect(
            msgs.PoseStamped,
            topics.EE_POSE,
            SENSOR_DATA,
            keep=lambda m: (convert.stamp_s(m), convert.pose_vector(m)),
        )
        obs.collect(
            msgs.JointState,
            topics.JOINT_STATES,
            SENSOR_DATA,
            keep=lambda m: (tuple(m.name), np.array(m.position)),
        )
        obs.collect(msgs.String, topics.ROBOT_STATUS, LATCHED, keep=lambda m: json.loads(m.data))
        obs.collect(
            msgs.JointState, topics.GRIPPER_JOINT_STATES, SENSOR_DATA, keep=lambda m: tuple(m.name)
        )
        target_pub = obs.publisher(msgs.PoseStamped, topics.TARGET_POSE)
        home_pub = obs.publisher(msgs.String, topics.HOME)
        obs.start()
        graph.start(
            "franka_node",
            "franka",
            params={
                "robot": "franky",
                "host": server.host,
                "enforce_realtime": False,
                "relative_dynamics_factor": 0.2,
            },
        )
        try:
            wait_for(lambda: len(obs.snapshot(topics.EE_POSE)) > 20, 60, "the arm's pose", graph)
            start = obs.snapshot(topics.EE_POSE)[-1][1]
            goal = start.copy()
            goal[:3] += [0.03, -0.02, 0.0]
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline:  # a teleop-like stream of fresh targets
                target_pub.publish(convert.pose_stamped(goal[:3], goal[3:], time.time()))
                time.sleep(0.02)
                if np.linalg.norm(obs.snapshot(topics.EE_POSE)[-1][1][:3] - goal[:3]) < 2e-3:
                    break
            reached = obs.snapshot(topics.EE_POSE)[-1][1]
            # While targets flow, /franka/home is refused: the arm stays with its publisher.
            for _ in range(25):
                target_pub.publish(convert.pose_stamped(goal[:3], goal[3:], time.time()))
                if _ == 10:
                    home_pub.publish(msgs.String(data="home"))
                time.sleep(0.02)
            wait_for(lambda: "home refused" in graph.log("franka"), 10, "the refusal", graph)
            assert "commands are flowing" in graph.log("franka")
            assert all(s["state"] != "homing" for s in obs.snapshot(topics.ROBOT_STATUS))
            # Once they stopped, it homes; a command meanwhile is refused, not followed.
            time.sleep(0.7)
            home_pub.publish(msgs.String(data="home"))
            wait_for(
                lambda: obs.snapshot(topics.ROBOT_STATUS)[-1]["state"] == "homing", 10, "homing"
            )
            refused = obs.snapshot(topics.ROBOT_STATUS)[-1]["refused"]
            target_pub.publish(convert.pose_stamped(goal[:3], goal[3:], time.time()))
            wait_for(
                lambda: obs.snapshot(topics.ROBOT_STATUS)[-1]["state"] == "tracking",
                60,
                "home reached",
                graph,
            )
            # The status can overtake the joint state of the motion's last tick.
            wait_for(
                lambda: (
                    np.abs(obs.snapshot(topics.JOINT_STATES)[-1][1] - HOME_JOINTS_RAD).max() < 5e-3
                ),
                2,
                "the arm at home",
            )
            final_status = obs.snapshot(topics.ROBOT_STATUS)[-1]
            assert graph.stop("franka") == 0, graph.log("franka")[-3000:]
        finally:
            obs.close()
    assert np.linalg.norm(reached[:3] - goal[:3]) < 3e-3, (reached, goal)
    assert obs.snapshot(topics.JOINT_STATES)[-1][0] == topics.ARM_JOINT_NAMES
    assert final_status["refused"] == refused + 1 and final_status["error"] is None
    assert obs.snapshot(topics.GRIPPER_JOINT_STATES)[-1] == topics.FINGER_JOINT_NAMES
    stamps = np.array([t for t, _ in obs.snapshot(topics.EE_POSE)])
    assert abs(stamps[-1] - time.time()) < 30 and np.all(np.diff(stamps) >= 0)
