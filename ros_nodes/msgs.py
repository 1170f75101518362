"""ROS 2 message types as cyclonedds IdlStructs: the bytes on the wire are what ROS 2 sends.

Each class carries its DDS type name (``pkg::msg::dds_::T_``), is ``@final`` (plain CDR;
appendable types would switch to XCDR2, which ROS 2 does not read) and lists its fields in
the .msg order. ``tests/ros_nodes/test_msgs.py`` checks every class field by field against
the ROS 2 definitions that ``rosbags`` carries and compares serialized bytes with rosbags'
CDR serializer.

``uint8[]`` fields (image data) are declared ``sequence<uint8>`` (so the XTypes type
information is ROS 2's), but serialized by ``_OctetsMachine``: the same wire bytes (uint32
length + raw octets), one buffer copy instead of the binding's ``struct.pack`` of one Python
int per pixel, and ``bytes`` back instead of a list of ints. That difference is what kept raw
640x480 images at about 30 msg/s (``benchmarks/ros_transport.py``).

Field names follow ROS, so ``Time.sec`` and ``Header.frame_id`` read as in rclpy. Helpers
that convert to and from the library's numpy/seconds conventions live in
``ros_nodes.convert``.
"""

import typing
from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl._machinery import BytesMachine
from cyclonedds.idl.annotations import final
from cyclonedds.idl.types import array, float32, float64, int32, sequence, uint8, uint32

# -- builtin_interfaces ---------------------------------------------------------------------


@dataclass
@final
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
@final
class Duration(IdlStruct, typename="builtin_interfaces::msg::dds_::Duration_"):
    sec: int32 = 0
    nanosec: uint32 = 0


# -- std_msgs -------------------------------------------------------------------------------


@dataclass
@final
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
@final
class String(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str = ""


@dataclass
@final
class Bool(IdlStruct, typename="std_msgs::msg::dds_::Bool_"):
    data: bool = False


# -- geometry_msgs --------------------------------------------------------------------------


@dataclass
@final
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
@final
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@dataclass
@final
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
@final
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
@final
class PoseStamped(IdlStruct, typename="geometry_msgs::msg::dds_::PoseStamped_"):
    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)


@dataclass
@final
class Transform(IdlStruct, typename="geometry_msgs::msg::dds_::Transform_"):
    translation: Vector3 = field(default_factory=Vector3)
    rotation: Quaternion = field(default_factory=Quaternion)


@dataclass
@final
class TransformStamped(IdlStruct, typename="geometry_msgs::msg::dds_::TransformStamped_"):
    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    transform: Transform = field(default_factory=Transform)


@dataclass
@final
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
@final
class TwistStamped(IdlStruct, typename="geometry_msgs::msg::dds_::TwistStamped_"):
    header: Header = field(default_factory=Header)
    twist: Twist = field(default_factory=Twist)


# -- sensor_msgs ----------------------------------------------------------------------------


@dataclass
@final
class RegionOfInterest(IdlStruct, typename="sensor_msgs::msg::dds_::RegionOfInterest_"):
    x_offset: uint32 = 0
    y_offset: uint32 = 0
    height: uint32 = 0
    width: uint32 = 0
    do_rectify: bool = False


@dataclass
@final
class Image(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = b""  # uint8[], carried as bytes (see _OctetsMachine)


@dataclass
@final
class CompressedImage(IdlStruct, typename="sensor_msgs::msg::dds_::CompressedImage_"):
    header: Header = field(default_factory=Header)
    format: str = ""
    data: sequence[uint8] = b""  # uint8[], carried as bytes (see _OctetsMachine)


@dataclass
@final
class CameraInfo(IdlStruct, typename="sensor_msgs::msg::dds_::CameraInfo_"):
    header: Header = field(default_factory=Header)
    height: uint32 = 0
    width: uint32 = 0
    distortion_model: str = ""
    d: sequence[float64] = field(default_factory=list)
    k: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    r: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    p: array[float64, 12] = field(default_factory=lambda: [0.0] * 12)
    binning_x: uint32 = 0
    binning_y: uint32 = 0
    roi: RegionOfInterest = field(default_factory=RegionOfInterest)


@dataclass
@final
class JointState(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Header = field(default_factory=Header)
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)


@dataclass
@final
class Joy(IdlStruct, typename="sensor_msgs::msg::dds_::Joy_"):
    header: Header = field(default_factory=Header)
    axes: sequence[float32] = field(default_factory=list)
    buttons: sequence[int32] = field(default_factory=list)


# -- trajectory_msgs ------------------------------------------------------------------------


@dataclass
@final
class JointTrajectoryPoint(IdlStruct, typename="trajectory_msgs::msg::dds_::JointTrajectoryPoint_"):
    positions: sequence[float64] = field(default_factory=list)
    velocities: sequence[float64] = field(default_factory=list)
    accelerations: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)
    time_from_start: Duration = field(default_factory=Duration)


@dataclass
@final
class JointTrajectory(IdlStruct, typename="trajectory_msgs::msg::dds_::JointTrajectory_"):
    header: Header = field(default_factory=Header)
    joint_names: sequence[str] = field(default_factory=list)
    points: sequence[JointTrajectoryPoint] = field(default_factory=list)


@dataclass
@final
class MultiDOFJointTrajectoryPoint(
    IdlStruct, typename="trajectory_msgs::msg::dds_::MultiDOFJointTrajectoryPoint_"
):
    transforms: sequence[Transform] = field(default_factory=list)
    velocities: sequence[Twist] = field(default_factory=list)
    accelerations: sequence[Twist] = field(default_factory=list)
    time_from_start: Duration = field(default_factory=Duration)


@dataclass
@final
class MultiDOFJointTrajectory(
    IdlStruct, typename="trajectory_msgs::msg::dds_::MultiDOFJointTrajectory_"
):
    header: Header = field(default_factory=Header)
    joint_names: sequence[str] = field(default_factory=list)
    points: sequence[MultiDOFJointTrajectoryPoint] = field(default_factory=list)


# -- tf2_msgs -------------------------------------------------------------------------------


@dataclass
@final
class TFMessage(IdlStruct, typename="tf2_msgs::msg::dds_::TFMessage_"):
    transforms: sequence[TransformStamped] = field(default_factory=list)


class _OctetsMachine(BytesMachine):
    """``sequence<uint8>`` on the wire, any buffer (bytes, bytearray, memoryview) in Python."""

    def serialize(self, buffer, value, *args, **kwargs):  # type: ignore[no-untyped-def]
        view = memoryview(value).cast("B") if not isinstance(value, bytes) else value
        buffer.align(4)
        buffer.write("I", 4, len(view))
        buffer.write_bytes(view)

    def default_initialize(self) -> bytes:
        return b""


def _octets(msg_type: type[IdlStruct], field_name: str) -> None:
    idl = msg_type.__idl__
    idl.populate()
    for machine in (idl.v1_machine, idl.v2_machine):
        machine.members_machines[field_name] = _OctetsMachine()


for _type in (Image, CompressedImage):
    _octets(_type, "data")


ALL_TYPES: tuple[type[IdlStruct], ...] = (
    Time,
    Duration,
    Header,
    String,
    Bool,
    Point,
    Quaternion,
    Vector3,
    Pose,
    PoseStamped,
    Transform,
    TransformStamped,
    Twist,
    TwistStamped,
    RegionOfInterest,
    Image,
    CompressedImage,
    CameraInfo,
    JointState,
    Joy,
    JointTrajectoryPoint,
    JointTrajectory,
    MultiDOFJointTrajectoryPoint,
    MultiDOFJointTrajectory,
    TFMessage,
)


def message_element(msg_type: type, field_name: str) -> type | None:
    """The message type of a ``sequence<Msg>`` field (``JointTrajectory.points``), else None."""
    hint = typing.get_type_hints(msg_type, include_extras=True)[field_name]
    for meta in getattr(hint, "__metadata__", ()):
        inner = getattr(meta, "subtype", None)
        if isinstance(inner, type) and issubclass(inner, IdlStruct):
            return inner
    return None


def ros_type_name(msg_type: type) -> str:
    """``sensor_msgs::msg::dds_::Image_`` -> ``sensor_msgs/msg/Image`` (the ROS 2 name)."""
    pkg, sub, _, name = msg_type.__idl_typename__.split("::")
    return f"{pkg}/{sub}/{name.removesuffix('_')}"
