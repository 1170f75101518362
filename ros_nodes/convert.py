"""Between the library's types (seconds, numpy, CameraFrame, RobotState) and ROS messages."""

from __future__ import annotations

import imagecodecs
import numpy as np

from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.hardware.robot import CartesianTarget, RobotState
from ros_nodes import msgs, topics


def to_time(seconds: float) -> msgs.Time:
    ns = int(round(seconds * 1e9))
    return msgs.Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def to_seconds(stamp: msgs.Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def header(seconds: float, frame_id: str) -> msgs.Header:
    return msgs.Header(stamp=to_time(seconds), frame_id=frame_id)


def stamp_s(msg: object) -> float:
    """The header stamp of a stamped message, in seconds."""
    return to_seconds(msg.header.stamp)  # type: ignore[attr-defined]


# -- images -----------------------------------------------------------------------------------
def rgb_image(color: np.ndarray, seconds: float, frame_id: str) -> msgs.Image:
    h, w, _ = color.shape
    return msgs.Image(header=header(seconds, frame_id), height=h, width=w, encoding="rgb8",
                      is_bigendian=0, step=3 * w, data=np.ascontiguousarray(color).tobytes())


def depth_image(depth_mm: np.ndarray, seconds: float, frame_id: str) -> msgs.Image:
    h, w = depth_mm.shape
    data = np.ascontiguousarray(depth_mm, dtype="<u2").tobytes()
    return msgs.Image(header=header(seconds, frame_id), height=h, width=w, encoding="16UC1",
                      is_bigendian=0, step=2 * w, data=data)


def image_array(msg: msgs.Image) -> np.ndarray:
    """(H, W, 3) uint8 for rgb8/bgr8 (as RGB), (H, W) uint16 for 16UC1/mono16."""
    if msg.encoding in ("rgb8", "bgr8"):
        rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
        img = rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
        return img[..., ::-1] if msg.encoding == "bgr8" else img
    if msg.encoding in ("16UC1", "mono16"):
        dtype = ">u2" if msg.is_bigendian else "<u2"
        rows = np.frombuffer(msg.data, dtype).reshape(msg.height, msg.step // 2)
        return rows[:, : msg.width].astype(np.uint16)
    raise ValueError(f"image encoding {msg.encoding!r} is not supported "
                     "(rgb8, bgr8, 16UC1, mono16)")


def compressed_image(color: np.ndarray, seconds: float, frame_id: str,
                     quality: int = 90) -> msgs.CompressedImage:
    """JPEG like image_transport's compressed plugin (format ``rgb8; jpeg compressed bgr8``)."""
    data = imagecodecs.jpeg_encode(np.ascontiguousarray(color), level=quality)
    return msgs.CompressedImage(header=header(seconds, frame_id),
                                format="rgb8; jpeg compressed bgr8", data=bytes(data))


def compressed_array(msg: msgs.CompressedImage) -> np.ndarray:
    if "jpeg" not in msg.format and "jpg" not in msg.format:
        raise ValueError(f"compressed image format {msg.format!r} is not JPEG")
    return imagecodecs.jpeg_decode(msg.data)


def camera_info(intr: CameraIntrinsics, seconds: float, frame_id: str) -> msgs.CameraInfo:
    k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msgs.CameraInfo(header=header(seconds, frame_id), height=intr.height,
                           width=intr.width, distortion_model="plumb_bob",
                           d=[float(x) for x in intr.distortion], k=k,
                           r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], p=p)


def intrinsics(msg: msgs.CameraInfo) -> CameraIntrinsics:
    return CameraIntrinsics(width=msg.width, height=msg.height, fx=msg.k[0], fy=msg.k[4],
                            cx=msg.k[2], cy=msg.k[5], distortion=tuple(msg.d))


# -- robot -----------------------------------------------------------------------------------
def pose_stamped(position: np.ndarray, quaternion_xyzw: np.ndarray, seconds: float,
                 frame_id: str = topics.BASE_FRAME) -> msgs.PoseStamped:
    p, q = np.asarray(position, float), np.asarray(quaternion_xyzw, float)
    return msgs.PoseStamped(header=header(seconds, frame_id), pose=msgs.Pose(
        position=msgs.Point(x=p[0], y=p[1], z=p[2]),
        orientation=msgs.Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])))


def pose_vector(msg: msgs.PoseStamped) -> np.ndarray:
    """(7,) position + quaternion xyzw."""
    p, q = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])


def arm_joint_state(state: RobotState, seconds: float) -> msgs.JointState:
    return msgs.JointState(header=header(seconds, ""), name=list(topics.ARM_JOINT_NAMES),
                           position=[float(x) for x in state.joint_positions],
                           velocity=[float(x) for x in state.joint_velocities], effort=[])


def gripper_joint_state(width_m: float, seconds: float) -> msgs.JointState:
    half = float(width_m) / 2.0
    return msgs.JointState(header=header(seconds, ""), name=list(topics.FINGER_JOINT_NAMES),
                           position=[half, half], velocity=[0.0, 0.0], effort=[])


def gripper_command(closed: bool, seconds: float) -> msgs.JointState:
    """Target finger positions: 0 (grasp) or open; stamped so stale commands are caught."""
    finger = 0.0 if closed else topics.GRIPPER_OPEN_FINGER_M
    return msgs.JointState(header=header(seconds, ""), name=list(topics.FINGER_JOINT_NAMES),
                           position=[finger, finger], velocity=[], effort=[])


def gripper_closed(msg: msgs.JointState) -> bool:
    if len(msg.position) != 2:
        raise ValueError(f"gripper command needs 2 finger positions "
                         f"({', '.join(topics.FINGER_JOINT_NAMES)}), got {len(msg.position)}")
    return sum(msg.position) < topics.GRIPPER_OPEN_FINGER_M  # below half open: grasp


def robot_state(joints: msgs.JointState, pose: msgs.PoseStamped, gripper: msgs.JointState,
                ) -> RobotState:
    """A RobotState from the three robot topics (stamped with the joint state's stamp)."""
    position = pose_vector(pose)
    return RobotState(timestamp_s=stamp_s(joints), joint_positions=np.array(joints.position),
                      joint_velocities=np.array(joints.velocity or [0.0] * 7),
                      ee_position=position[:3], ee_quaternion=position[3:],
                      gripper_width_m=float(sum(gripper.position)))


def target_from_msgs(pose: msgs.PoseStamped, closed: bool) -> CartesianTarget:
    v = pose_vector(pose)
    return CartesianTarget(v[:3], v[3:], closed, stamp_s(pose))


# -- teleop ----------------------------------------------------------------------------------
def twist_stamped(twist: np.ndarray, seconds: float,
                  frame_id: str = topics.BASE_FRAME) -> msgs.TwistStamped:
    t = [float(x) for x in twist]
    return msgs.TwistStamped(header=header(seconds, frame_id), twist=msgs.Twist(
        linear=msgs.Vector3(x=t[0], y=t[1], z=t[2]),
        angular=msgs.Vector3(x=t[3], y=t[4], z=t[5])))


def twist_vector(msg: msgs.TwistStamped) -> np.ndarray:
    lin, ang = msg.twist.linear, msg.twist.angular
    return np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z])
