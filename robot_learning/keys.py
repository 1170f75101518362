"""Key names of what a robot station records and a policy observes: one place for all.

The recorder writes these keys into the store, the runtime assembles observations under
them and policies read them, so a typo is an import error, not a silent miss.
"""

from __future__ import annotations

TIMESTAMP = "timestamp"
JOINT_POSITIONS = "robot_joint_positions"
JOINT_VELOCITIES = "robot_joint_velocities"
EE_POSE = "robot_ee_pose"
GRIPPER_WIDTH = "robot_gripper_width"
ACTION = "action"
TELEOP_TWIST = "teleop_twist"
CONTROL_SOURCE = "control_source"  # who commanded the step: runtime.ControlSource (0/1/2)
POLICY_ACTION = "policy_action"  # what the policy wanted, whoever was in control
HUMAN_ACTION = "human_action"  # what the operator's device wanted, whoever was in control
STATE_STREAM = "state"
STATE_TIMESTAMP = "state_timestamp"
STATE_JOINT_POSITIONS = "state_joint_positions"
STATE_EE_POSE = "state_ee_pose"
STATE_GRIPPER_WIDTH = "state_gripper_width"
STATE_TARGET = "state_target"
BASE_FRAME = "fr3_link0"
CAMERA_PREFIX = "camera_"
TIMESTAMP_SUFFIX = "_timestamp"


def camera_key(name: str) -> str:
    return f"{CAMERA_PREFIX}{name}"


def camera_name(key: str) -> str:
    """``camera_front`` -> ``front``."""
    if not key.startswith(CAMERA_PREFIX):
        raise ValueError(f"{key!r} is not a camera key (they start with {CAMERA_PREFIX!r})")
    return key[len(CAMERA_PREFIX):]


def depth_key(name: str) -> str:
    return f"depth_{name}"


def camera_timestamp_key(name: str) -> str:
    return f"{CAMERA_PREFIX}{name}{TIMESTAMP_SUFFIX}"
