"""Our wire types against the ROS 2 definitions rosbags carries: fields, and the exact bytes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.base import Nodetype

from robot_learning.hardware.camera import CameraIntrinsics
from robot_learning.runtime import ActionChunk
from ros_nodes import convert, msgs
from ros_nodes.msgs import ALL_TYPES, message_element, ros_type_name

STORES = (Stores.ROS2_HUMBLE, Stores.ROS2_JAZZY)
IDL_OF_ROS = {
    "int32": "int32",
    "uint32": "uint32",
    "uint8": "uint8",
    "float64": "float64",
    "float32": "float32",
    "string": "str",
    "bool": "bool",
}


def _idl_name(annotation: object) -> str:
    text = str(annotation)
    for token in ("float64", "float32", "uint32", "int32", "uint8", "bool", "str"):
        if token in text:
            return token
    return getattr(annotation, "__name__", text)


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("msg_type", ALL_TYPES, ids=lambda t: t.__name__)
def test_fields_match_the_ros2_definition(store, msg_type):
    typestore = get_typestore(store)
    _, fields = typestore.fielddefs[ros_type_name(msg_type)]
    ours = {f.name: f.type for f in dataclasses.fields(msg_type)}
    assert list(ours) == [name for name, _ in fields], "field order is the .msg order"
    for name, (kind, detail) in fields:
        if kind == Nodetype.BASE:
            assert _idl_name(ours[name]) == IDL_OF_ROS[detail[0]], name
        elif kind == Nodetype.NAME:
            assert ros_type_name(ours[name]) == detail, name
        elif detail[0][0] == Nodetype.NAME:  # sequence of messages
            (_, elem), _size = detail
            assert kind == Nodetype.SEQUENCE, name
            assert ros_type_name(message_element(msg_type, name)) == elem, name
        else:  # sequence or array of a base type
            (_, (elem, _)), size = detail
            text = str(ours[name])
            assert ("array" in text) == (kind == Nodetype.ARRAY), name
            assert IDL_OF_ROS[elem] in text, name
            if kind == Nodetype.ARRAY:
                assert str(size) in text, name
    assert msg_type.__idl_annotations__.get("extensibility") == "final"
    assert msg_type.__idl_typename__.split("::")[2] == "dds_"


def _samples() -> list[object]:
    rng = np.random.default_rng(0)
    color = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    stamp = 1795700000.123456789
    return [
        convert.to_time(stamp),
        msgs.Duration(sec=-3, nanosec=5),
        convert.header(stamp, "front_color_optical_frame"),
        msgs.String(data="héllo"),
        convert.rgb_image(color, stamp, "front_color_optical_frame"),
        convert.depth_image(rng.integers(0, 4000, (4, 6), dtype=np.uint16), stamp, "d"),
        convert.compressed_image(color, stamp, "front_color_optical_frame"),
        convert.camera_info(
            CameraIntrinsics(320, 240, 300.5, 301.5, 160.2, 119.8, (0.1, -0.2, 0.001, 0.002, 0.03)),
            stamp,
            "f",
        ),
        msgs.JointState(
            header=convert.header(stamp, ""),
            name=["fr3_joint1", "fr3_joint2"],
            position=[0.1, -0.2],
            velocity=[0.3, 0.4],
            effort=[],
        ),
        msgs.Joy(
            header=convert.header(stamp, ""), axes=[0.5, -0.25, 0.0], buttons=[0, 1, 0, 0, 1, 0]
        ),
        convert.pose_stamped(np.array([0.5, -0.1, 0.3]), np.array([1.0, 0, 0, 0]), stamp),
        convert.twist_stamped(np.array([0.1, 0.2, -0.3, 0.01, 0.02, -0.03]), stamp),
        msgs.Pose(),
        msgs.Twist(),
        msgs.Point(x=1.0),
        msgs.Quaternion(),
        msgs.Vector3(z=2.0),
        msgs.RegionOfInterest(x_offset=1, height=5, do_rectify=True),
        msgs.Bool(data=True),
        msgs.Transform(translation=msgs.Vector3(x=0.5)),
        _tf_message(stamp),
        _tf_message(stamp).transforms[0],
        *convert.chunk_messages(_chunk(stamp)),
        msgs.MultiDOFJointTrajectoryPoint(),
        msgs.JointTrajectoryPoint(
            positions=[0.1],
            velocities=[0.2],
            accelerations=[0.3],
            effort=[0.4],
            time_from_start=msgs.Duration(sec=1, nanosec=2),
        ),
    ]


def _tf_message(stamp: float) -> msgs.TFMessage:
    """What calibration_node latches on /tf_static: a fixed and a hand camera."""
    T = np.eye(4)
    T[:3, :3] = [[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]
    T[:3, 3] = [1.2, -0.05, 0.6]
    return msgs.TFMessage(
        transforms=[
            convert.transform_stamped(T, stamp, "fr3_link0", "front_color_optical_frame"),
            convert.transform_stamped(
                np.eye(4), stamp, "fr3_hand_tcp", "wrist_color_optical_frame"
            ),
        ]
    )


def _chunk(stamp: float) -> ActionChunk:
    rng = np.random.default_rng(2)
    n = 4
    quats = rng.normal(size=(n, 4))
    return ActionChunk(
        stamp + 0.1 * np.arange(n),
        rng.uniform(-1, 1, (n, 3)),
        quats / np.linalg.norm(quats, axis=1, keepdims=True),
        np.array([0.0, 0.25, 1.0, 0.6]),
    )


def _as_rosbags(msg, typestore):  # type: ignore[no-untyped-def]
    """rosbags wants numpy arrays for numeric sequences; convert with the .msg element type."""
    cls = typestore.types[ros_type_name(type(msg))]
    _, fields = typestore.fielddefs[ros_type_name(type(msg))]
    values = {}
    for name, (kind, detail) in fields:
        value = getattr(msg, name)
        if kind == Nodetype.NAME:
            value = _as_rosbags(value, typestore)
        elif kind == Nodetype.SEQUENCE and detail[0][0] == Nodetype.NAME:
            value = [_as_rosbags(v, typestore) for v in value]
        elif kind in (Nodetype.SEQUENCE, Nodetype.ARRAY):
            elem = detail[0][1][0]
            if elem != "string":
                value = (
                    np.frombuffer(value, np.uint8)
                    if isinstance(value, bytes)
                    else np.array(
                        value,
                        dtype={
                            "float64": np.float64,
                            "float32": np.float32,
                            "int32": np.int32,
                            "uint8": np.uint8,
                        }[elem],
                    )
                )
        values[name] = value
    return cls(**values)


@pytest.mark.parametrize("store", STORES)
def test_every_type_serializes_to_the_bytes_ros2_sends(store):
    typestore = get_typestore(store)
    covered = set()
    for msg in _samples():
        name = ros_type_name(type(msg))
        expected = bytes(typestore.serialize_cdr(_as_rosbags(msg, typestore), name))
        assert msg.serialize() == expected, name
        back = typestore.deserialize_cdr(expected, name)
        assert type(msg).deserialize(expected) == msg, f"{name} round trip"
        assert back is not None
        covered.add(type(msg))
    assert covered == set(ALL_TYPES)


def test_image_data_is_bytes_on_both_ends_and_large_frames_are_exact():
    color = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    msg = convert.rgb_image(color, 12.5, "front_color_optical_frame")
    back = msgs.Image.deserialize(msg.serialize())
    assert isinstance(back.data, bytes)
    np.testing.assert_array_equal(convert.image_array(back), color)
    assert convert.stamp_s(back) == pytest.approx(12.5)


def test_static_transform_round_trips_through_the_wire():
    msg = _tf_message(1795700000.5)
    back = msgs.TFMessage.deserialize(msg.serialize())
    assert [t.child_frame_id for t in back.transforms] == [
        "front_color_optical_frame",
        "wrist_color_optical_frame",
    ]
    T = convert.transform_matrix(back.transforms[0])
    np.testing.assert_allclose(T[:3, 3], [1.2, -0.05, 0.6], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=1e-12)


def test_chunk_round_trips_through_the_trajectory_pair_on_the_wire():
    stamp = 1795700000.25
    chunk = _chunk(stamp)
    poses, fingers = convert.chunk_messages(chunk)
    assert poses.header.frame_id == "fr3_link0" and poses.joint_names == ["fr3_hand_tcp"]
    assert convert.stamp_s(poses) == pytest.approx(stamp, abs=1e-6)  # float64 at 1.8e9 s
    assert [convert.duration_s(p.time_from_start) for p in poses.points] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3], abs=1e-6
    )
    assert fingers.points[2].positions == [0.0, 0.0]  # closed
    assert fingers.points[0].positions == [0.04, 0.04]  # open
    wire = (
        msgs.MultiDOFJointTrajectory.deserialize(poses.serialize()),
        msgs.JointTrajectory.deserialize(fingers.serialize()),
    )
    back = convert.chunk_from_messages(*wire)
    np.testing.assert_allclose(back.times_s, chunk.times_s, atol=1e-6)
    np.testing.assert_allclose(back.as_vectors(), chunk.as_vectors(), atol=1e-12)


def test_chunk_pair_with_mismatched_parts_is_refused_with_the_reason():
    poses, fingers = convert.chunk_messages(_chunk(100.0))
    with pytest.raises(ValueError, match="different stamps"):
        convert.chunk_from_messages(poses, convert.chunk_messages(_chunk(100.5))[1])
    fingers.points.pop()
    with pytest.raises(ValueError, match="4 pose points and 3 gripper points"):
        convert.chunk_from_messages(poses, fingers)
