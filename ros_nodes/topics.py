"""Topic names, joint names and the Joy button layout of the collection and deployment
graphs: one place.

Shapes follow realsense-ros, franka_ros2 and spacenav (ROS_INTERFACES.md), so an official
driver can replace one of our nodes without touching the rest of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

# Robot bridge (franka_node, or sim_node in its place).
JOINT_STATES = "/franka/joint_states"
EE_POSE = "/franka/ee_pose"  # PoseStamped, fr3_link0, hand TCP
GRIPPER_JOINT_STATES = "/franka_gripper/joint_states"
TARGET_POSE = "/franka/target_pose"  # PoseStamped command: where the TCP should go
GRIPPER_COMMAND = "/franka_gripper/command"  # JointState command, see GRIPPER_* below
ROBOT_STATUS = "/franka/status"  # String (JSON), latched: tracking / hold / homing and why
HOME = "/franka/home"  # String (any data): franka_node drives the resting arm to home_joints
ARM_JOINT_NAMES = tuple(f"fr3_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES = ("fr3_finger_joint1", "fr3_finger_joint2")
BASE_FRAME = "fr3_link0"
TCP_FRAME = "fr3_hand_tcp"
GRIPPER_OPEN_FINGER_M = 0.04  # each finger's position when open (width 0.08 m)

# Teleop (spacenav-shaped).
TWIST = "/spacenav/twist_stamped"
JOY = "/spacenav/joy"

# Recorder.
RECORDER_STATUS = "/recorder/status"  # String (JSON), latched
RECORDER_COMMAND = "/recorder/command"  # String: start | success | fail | discard

# Deployment: policy_node -> arbiter_node -> the robot bridge.
POLICY_CHUNK = "/policy/chunk"  # MultiDOFJointTrajectory: TCP targets, stamp = observation
POLICY_CHUNK_GRIPPER = "/policy/chunk_gripper"  # JointTrajectory: finger targets, same stamp
POLICY_STATUS = "/policy/status"  # String (JSON), latched: checkpoint, execution, ready, error
ARBITER_STATUS = "/arbiter/status"  # String (JSON) every control tick: source, both actions
EMERGENCY_STOP = "/arbiter/emergency_stop"  # Bool: true latches a hold, false releases it

# Calibration (calibration_node): results latched like tf2's static broadcaster.
TF_STATIC = "/tf_static"  # tf2_msgs/TFMessage, transient local depth 1
CALIBRATION_STATUS = "/calibration/status"  # String (JSON), latched: progress, residuals
CALIBRATION_COMMAND = "/calibration/command"  # String: capture | solve (manual mode)


def calibrated_camera_info(camera: str) -> str:
    """CameraInfo with the calibrated intrinsics (latched), next to the driver's own."""
    return f"/calibration/{camera}/camera_info"


class JoyButton:
    """Index of each button in our Joy messages (spacenav's two buttons come first)."""

    GRIPPER = 0  # held: 1 while the gripper should be closed
    INTERVENE = 1  # held: deadman / intervention
    START = 2  # pressed: begin an episode
    SUCCESS = 3  # pressed: end it, successful
    FAIL = 4  # pressed: end it, failed
    DISCARD = 5  # pressed: drop it
    COUNT = 6


@dataclass(frozen=True)
class CameraTopics:
    """realsense-ros names under ``/camera/<name>``."""

    name: str

    @property
    def prefix(self) -> str:
        return f"/camera/{self.name}"

    @property
    def color(self) -> str:
        return f"{self.prefix}/color/image_raw"

    @property
    def compressed(self) -> str:
        return f"{self.prefix}/color/image_raw/compressed"

    @property
    def camera_info(self) -> str:
        return f"{self.prefix}/color/camera_info"

    @property
    def aligned_depth(self) -> str:
        return f"{self.prefix}/aligned_depth_to_color/image_raw"

    @property
    def device_info(self) -> str:
        """Latched JSON {"serial", "source"}: which device this camera is (not in realsense-ros;
        lets a recorder refuse a calibration made for another camera)."""
        return f"{self.prefix}/device_info"

    @property
    def optical_frame(self) -> str:
        return f"{self.name}_color_optical_frame"
