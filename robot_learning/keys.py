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
    return key[len(CAMERA_PREFIX) :]


def depth_key(name: str) -> str:
    return f"depth_{name}"


def camera_timestamp_key(name: str) -> str:
    return f"{CAMERA_PREFIX}{name}{TIMESTAMP_SUFFIX}"


# --- Human hands and motion tracks (MT-pi) ------------------------------------------------
# Per-step keys, one set per camera view. Pixel coordinates (u right, v down) are in the
# stored image resolution of that camera.
#
# hand_keypoints_<cam>  float32 (2, 21, 2)  both hands' 21 landmarks (MediaPipe order,
#                                           data_collection.hand_tracking.base), hands in
#                                           HANDS order; NaN where a hand was never seen
# hand_state_<cam>      uint8   (2,)        per hand: PointState (missing/detected/filled)
# track_<cam>           float32 (3, 2)      the motion-track points, TRACK_POINTS order
# track_state_<cam>     uint8   (3,)        per point: PointState
# track_points_3d       float32 (3, 3)      the same points in the base frame, metres
#                                           (robot: forward kinematics; hand: triangulated
#                                           or, in simulation, ground truth)
# track_grasp           float32 ()          1 grasping (robot: gripper closing/closed;
#                                           human: finger-geometry heuristic), else 0
# track_terminal        uint8   ()          1 on the episode's final steps (task done)
# hand_landmarks_3d     float32 (2, 21, 3)  ground truth of both hands' landmarks in the
#                                           base frame, metres (simulated human videos
#                                           only); NaN for a hand not in the scene
HANDS = ("right", "left")
TRACK_POINTS = ("finger_a", "finger_b", "base")  # hand: thumb tip, index tip, index knuckle
# robot: the two fingertips and the gripper centre between the finger roots, so a pinch of
# the hand and a closing of the gripper move the same pair of points together.
TRACK_POINTS_3D = "track_points_3d"
TRACK_GRASP = "track_grasp"
TRACK_TERMINAL = "track_terminal"
HAND_LANDMARKS_3D = "hand_landmarks_3d"


def hand_keypoints_key(camera: str) -> str:
    return f"hand_keypoints_{camera}"


def hand_state_key(camera: str) -> str:
    return f"hand_state_{camera}"


def track_key(camera: str) -> str:
    return f"track_{camera}"


def track_state_key(camera: str) -> str:
    return f"track_state_{camera}"
