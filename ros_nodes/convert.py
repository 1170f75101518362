"""Between the library's types (seconds, numpy, CameraFrame, RobotState) and ROS messages."""

from __future__ import annotations

import imagecodecs
import numpy as np

from robot_learning.geometry import pose_from_transform, transform_from_pose
from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.runtime.chunk import ActionChunk
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
    return msgs.Image(
        header=header(seconds, frame_id),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=3 * w,
        data=np.ascontiguousarray(color).tobytes(),
    )


def depth_image(depth_mm: np.ndarray, seconds: float, frame_id: str) -> msgs.Image:
    h, w = depth_mm.shape
    data = np.ascontiguousarray(depth_mm, dtype="<u2").tobytes()
    return msgs.Image(
        header=header(seconds, frame_id),
        height=h,
        width=w,
        encoding="16UC1",
        is_bigendian=0,
        step=2 * w,
        data=data,
    )


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
    raise ValueError(
        f"image encoding {msg.encoding!r} is not supported (rgb8, bgr8, 16UC1, mono16)"
    )


def compressed_image(
    color: np.ndarray, seconds: float, frame_id: str, quality: int = 90
) -> msgs.CompressedImage:
    """JPEG like image_transport's compressed plugin (format ``rgb8; jpeg compressed bgr8``)."""
    data = imagecodecs.jpeg_encode(np.ascontiguousarray(color), level=quality)
    return msgs.CompressedImage(
        header=header(seconds, frame_id), format="rgb8; jpeg compressed bgr8", data=bytes(data)
    )


def compressed_array(msg: msgs.CompressedImage) -> np.ndarray:
    if "jpeg" not in msg.format and "jpg" not in msg.format:
        raise ValueError(f"compressed image format {msg.format!r} is not JPEG")
    return imagecodecs.jpeg_decode(msg.data)


def camera_info(intr: CameraIntrinsics, seconds: float, frame_id: str) -> msgs.CameraInfo:
    k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msgs.CameraInfo(
        header=header(seconds, frame_id),
        height=intr.height,
        width=intr.width,
        distortion_model="plumb_bob",
        d=[float(x) for x in intr.distortion],
        k=k,
        r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        p=p,
    )


def intrinsics(msg: msgs.CameraInfo) -> CameraIntrinsics:
    return CameraIntrinsics(
        width=msg.width,
        height=msg.height,
        fx=msg.k[0],
        fy=msg.k[4],
        cx=msg.k[2],
        cy=msg.k[5],
        distortion=tuple(msg.d),
    )


# -- robot -----------------------------------------------------------------------------------
def pose_stamped(
    position: np.ndarray,
    quaternion_xyzw: np.ndarray,
    seconds: float,
    frame_id: str = topics.BASE_FRAME,
) -> msgs.PoseStamped:
    p, q = np.asarray(position, float), np.asarray(quaternion_xyzw, float)
    return msgs.PoseStamped(
        header=header(seconds, frame_id),
        pose=msgs.Pose(
            position=msgs.Point(x=p[0], y=p[1], z=p[2]),
            orientation=msgs.Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]),
        ),
    )


def pose_vector(msg: msgs.PoseStamped) -> np.ndarray:
    """(7,) position + quaternion xyzw."""
    p, q = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])


def arm_joint_state(state: RobotState, seconds: float) -> msgs.JointState:
    return msgs.JointState(
        header=header(seconds, ""),
        name=list(topics.ARM_JOINT_NAMES),
        position=[float(x) for x in state.joint_positions],
        velocity=[float(x) for x in state.joint_velocities],
        effort=[],
    )


def gripper_joint_state(width_m: float, seconds: float) -> msgs.JointState:
    half = float(width_m) / 2.0
    return msgs.JointState(
        header=header(seconds, ""),
        name=list(topics.FINGER_JOINT_NAMES),
        position=[half, half],
        velocity=[0.0, 0.0],
        effort=[],
    )


def gripper_command(closed: bool, seconds: float) -> msgs.JointState:
    """Target finger positions: 0 (grasp) or open; stamped so stale commands are caught."""
    finger = 0.0 if closed else topics.GRIPPER_OPEN_FINGER_M
    return msgs.JointState(
        header=header(seconds, ""),
        name=list(topics.FINGER_JOINT_NAMES),
        position=[finger, finger],
        velocity=[],
        effort=[],
    )


def gripper_closed(msg: msgs.JointState) -> bool:
    if len(msg.position) != 2:
        raise ValueError(
            f"gripper command needs 2 finger positions "
            f"({', '.join(topics.FINGER_JOINT_NAMES)}), got {len(msg.position)}"
        )
    return sum(msg.position) < topics.GRIPPER_OPEN_FINGER_M  # below half open: grasp


def robot_state(
    joints: msgs.JointState,
    pose: msgs.PoseStamped,
    gripper: msgs.JointState,
) -> RobotState:
    """A RobotState from the three robot topics (stamped with the joint state's stamp)."""
    position = pose_vector(pose)
    return RobotState(
        timestamp_s=stamp_s(joints),
        joint_positions=np.array(joints.position),
        joint_velocities=np.array(joints.velocity or [0.0] * 7),
        ee_position=position[:3],
        ee_quaternion=position[3:],
        gripper_width_m=float(sum(gripper.position)),
    )


def target_from_msgs(pose: msgs.PoseStamped, closed: bool) -> CartesianTarget:
    v = pose_vector(pose)
    return CartesianTarget(v[:3], v[3:], closed, stamp_s(pose))


def transform_stamped(
    T_parent_child: np.ndarray, seconds: float, parent: str, child: str
) -> msgs.TransformStamped:
    """A 4x4 transform as tf2's ``geometry_msgs/TransformStamped`` (parent -> child)."""
    position, q = pose_from_transform(np.asarray(T_parent_child, float))
    return msgs.TransformStamped(
        header=header(seconds, parent),
        child_frame_id=child,
        transform=msgs.Transform(
            translation=msgs.Vector3(
                x=float(position[0]), y=float(position[1]), z=float(position[2])
            ),
            rotation=msgs.Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
        ),
    )


def transform_matrix(msg: msgs.TransformStamped) -> np.ndarray:
    """The 4x4 transform of a ``TransformStamped`` (parent -> child)."""
    t, q = msg.transform.translation, msg.transform.rotation
    return transform_from_pose(np.array([t.x, t.y, t.z]), np.array([q.x, q.y, q.z, q.w]))


# -- teleop ----------------------------------------------------------------------------------
def twist_stamped(
    twist: np.ndarray, seconds: float, frame_id: str = topics.BASE_FRAME
) -> msgs.TwistStamped:
    t = [float(x) for x in twist]
    return msgs.TwistStamped(
        header=header(seconds, frame_id),
        twist=msgs.Twist(
            linear=msgs.Vector3(x=t[0], y=t[1], z=t[2]),
            angular=msgs.Vector3(x=t[3], y=t[4], z=t[5]),
        ),
    )


def twist_vector(msg: msgs.TwistStamped) -> np.ndarray:
    lin, ang = msg.twist.linear, msg.twist.angular
    return np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z])


# -- action chunks ---------------------------------------------------------------------------
def to_duration(seconds: float) -> msgs.Duration:
    ns = int(round(seconds * 1e9))
    return msgs.Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def duration_s(duration: msgs.Duration) -> float:
    return duration.sec + duration.nanosec * 1e-9


def chunk_messages(
    chunk: ActionChunk,
    frame_id: str = topics.BASE_FRAME,
) -> tuple[msgs.MultiDOFJointTrajectory, msgs.JointTrajectory]:
    """An ActionChunk as the pair published on ``/policy/chunk`` and ``/policy/chunk_gripper``.

    Both headers carry the observation time (the chunk's first time); each point's
    ``time_from_start`` is its time after that. The TCP poses are one MultiDOF "joint"
    (``fr3_hand_tcp``) in ``frame_id``; the gripper is the two finger positions, 0 closed ..
    ``GRIPPER_OPEN_FINGER_M`` open, so the policy's 0..1 (1 = closed) maps linearly.
    """
    stamp = chunk.start_s
    head = header(stamp, frame_id)
    poses = msgs.MultiDOFJointTrajectory(
        header=head,
        joint_names=[topics.TCP_FRAME],
        points=[
            msgs.MultiDOFJointTrajectoryPoint(
                transforms=[
                    msgs.Transform(
                        translation=msgs.Vector3(x=float(p[0]), y=float(p[1]), z=float(p[2])),
                        rotation=msgs.Quaternion(
                            x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])
                        ),
                    )
                ],
                time_from_start=to_duration(float(t) - stamp),
            )
            for t, p, q in zip(chunk.times_s, chunk.positions, chunk.quaternions, strict=True)
        ],
    )
    fingers = msgs.JointTrajectory(
        header=head,
        joint_names=list(topics.FINGER_JOINT_NAMES),
        points=[
            msgs.JointTrajectoryPoint(
                positions=[_finger_of(g)] * 2, time_from_start=to_duration(float(t) - stamp)
            )
            for t, g in zip(chunk.times_s, chunk.gripper, strict=True)
        ],
    )
    return poses, fingers


def chunk_from_messages(
    poses: msgs.MultiDOFJointTrajectory, fingers: msgs.JointTrajectory
) -> ActionChunk:
    """The ActionChunk back from the pair; errors name the topic field that is wrong."""
    stamp = stamp_s(poses)
    if poses.header.stamp != fingers.header.stamp:
        raise ValueError(
            f"chunk pose and gripper trajectories have different stamps "
            f"({stamp:.6f} vs {stamp_s(fingers):.6f})"
        )
    if len(poses.points) != len(fingers.points) or not poses.points:
        raise ValueError(
            f"chunk has {len(poses.points)} pose points and "
            f"{len(fingers.points)} gripper points; both must be equal and > 0"
        )
    if poses.header.frame_id not in ("", topics.BASE_FRAME):
        raise ValueError(
            f"chunk poses are in frame {poses.header.frame_id!r}; expected {topics.BASE_FRAME}"
        )
    rows, times = [], []
    for k, (point, finger) in enumerate(zip(poses.points, fingers.points, strict=True)):
        if len(point.transforms) != 1:
            raise ValueError(
                f"chunk point {k}: {len(point.transforms)} transforms, expected 1 "
                f"({topics.TCP_FRAME})"
            )
        if not finger.positions:
            raise ValueError(f"chunk gripper point {k} has no positions")
        tr, rot = point.transforms[0].translation, point.transforms[0].rotation
        closed = 1.0 - float(np.mean(finger.positions)) / topics.GRIPPER_OPEN_FINGER_M
        rows.append([tr.x, tr.y, tr.z, rot.x, rot.y, rot.z, rot.w, closed])
        times.append(stamp + duration_s(point.time_from_start))
    return ActionChunk.from_vectors(np.array(times), np.array(rows))


def _finger_of(gripper: float) -> float:
    return float((1.0 - gripper) * topics.GRIPPER_OPEN_FINGER_M)
