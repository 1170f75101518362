"""``rl store import-bag``: bags written with rosbags' own writer (sqlite3 and mcap) round-trip
into store episodes whose rows are the messages the recorder's rule picks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from data_collection.bag_import import import_bag
from data_collection.bag_mapping import MappingError, load_mapping
from robot_learning.store import StoreReader
from robot_learning.store.validate import validate

ROOT = Path(__file__).resolve().parents[2]
TS = get_typestore(Stores.ROS2_JAZZY)
T0 = 1_700_000_000.0  # station clock of the recording
H, W = 48, 64
JOINTS = [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1", "fr3_finger_joint2"]
# topic -> (rate Hz, offset s): offsets keep stamps off the 10 Hz step grid.
RATES = {
    "/camera/front/color/image_raw": (30.0, 0.004),
    "/camera/wrist/color/image_raw/compressed": (15.0, 0.011),
    "/franka/joint_states": (100.0, 0.0003),
    "/franka/ee_pose": (50.0, 0.002),
    "/franka/target_pose": (20.0, 0.007),
    "/spacenav/twist_stamped": (25.0, 0.005),
}
DURATION_S = 7.0
PRESSES_S = (1.0, 3.0, 4.0, 6.0)  # Joy button 0: start, end, start, end


def image(i: int) -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([x * 4, y * 5, np.full((H, W), (i * 7) % 255)], axis=-1)
    img[(i * 2) % (H - 8) : (i * 2) % (H - 8) + 8, 10:26] = [230, 30, 30]
    return img.astype(np.uint8)


def value(topic: str, i: int, n: int) -> np.ndarray:
    """Distinct, exactly representable numbers per message."""
    return np.arange(n) + 1000.0 * len(topic) + i * 0.25


def header(t: float, frame: str):
    sec = int(t)
    return TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=round((t - sec) * 1e9)),
        frame_id=frame,
    )


def message(topic: str, i: int, t: float):
    T = TS.types
    if topic == "/camera/front/color/image_raw":
        return T["sensor_msgs/msg/Image"](
            header=header(t, "front_color_optical_frame"),
            height=H,
            width=W,
            encoding="rgb8",
            is_bigendian=0,
            step=W * 3,
            data=image(i).reshape(-1),
        )
    if topic.endswith("compressed"):
        data = np.frombuffer(imagecodecs.jpeg8_encode(image(100 + i), level=95), np.uint8)
        return T["sensor_msgs/msg/CompressedImage"](
            header=header(t, "wrist_color_optical_frame"),
            format="rgb8; jpeg compressed bgr8",
            data=data,
        )
    if topic == "/franka/joint_states":
        return T["sensor_msgs/msg/JointState"](
            header=header(t, ""),
            name=JOINTS,
            position=value(topic, i, 9),
            velocity=-value(topic, i, 9),
            effort=np.zeros(9),
        )
    if topic.startswith("/franka"):
        v = value(topic, i, 7)
        point = T["geometry_msgs/msg/Point"](x=v[0], y=v[1], z=v[2])
        quat = T["geometry_msgs/msg/Quaternion"](x=v[3], y=v[4], z=v[5], w=v[6])
        return T["geometry_msgs/msg/PoseStamped"](
            header=header(t, "fr3_link0"),
            pose=T["geometry_msgs/msg/Pose"](position=point, orientation=quat),
        )
    v = value(topic, i, 6)
    vec = T["geometry_msgs/msg/Vector3"]
    return T["geometry_msgs/msg/TwistStamped"](
        header=header(t, "fr3_link0"),
        twist=T["geometry_msgs/msg/Twist"](
            linear=vec(x=v[0], y=v[1], z=v[2]), angular=vec(x=v[3], y=v[4], z=v[5])
        ),
    )


TYPES = {
    "/camera/front/color/image_raw": "sensor_msgs/msg/Image",
    "/camera/wrist/color/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
    "/franka/joint_states": "sensor_msgs/msg/JointState",
    "/franka/ee_pose": "geometry_msgs/msg/PoseStamped",
    "/franka/target_pose": "geometry_msgs/msg/PoseStamped",
    "/spacenav/twist_stamped": "geometry_msgs/msg/TwistStamped",
}


def write_bag(path: Path, storage: StoragePlugin, *, pause_s: tuple[float, float] = (0, 0)) -> Path:
    """A 7 s recording of every topic, receive times 2 ms after the header stamps; nothing is
    recorded during ``pause_s``."""
    events = []
    for topic, (rate, offset) in RATES.items():
        for i in range(int(DURATION_S * rate)):
            events.append((T0 + offset + i / rate, topic, i))
    for i in range(int(DURATION_S * 10)):
        events.append((T0 + i / 10, "/spacenav/joy", i))
    for i in range(5):
        events.append((T0 + i, "/rosout", i))
    events = sorted(e for e in events if not pause_s[0] <= e[0] - T0 < pause_s[1])
    with Writer(path, version=9, storage_plugin=storage) as writer:
        conns = {t: writer.add_connection(t, m, typestore=TS) for t, m in TYPES.items()}
        conns["/spacenav/joy"] = writer.add_connection(
            "/spacenav/joy", "sensor_msgs/msg/Joy", typestore=TS
        )
        conns["/rosout"] = writer.add_connection("/rosout", "rcl_interfaces/msg/Log", typestore=TS)
        for t, topic, i in events:
            if topic == "/spacenav/joy":
                pressed = any(abs(t - (T0 + p)) < 1e-6 for p in PRESSES_S)
                msg = TS.types["sensor_msgs/msg/Joy"](
                    header=header(t, ""),
                    axes=np.zeros(6, np.float32),
                    buttons=np.array([int(pressed), 0], np.int32),
                )
                type_name = "sensor_msgs/msg/Joy"
            elif topic == "/rosout":
                msg = TS.types["rcl_interfaces/msg/Log"](
                    stamp=header(t, "").stamp,
                    level=20,
                    name="n",
                    msg="hi",
                    file="f",
                    function="g",
                    line=1,
                )
                type_name = "rcl_interfaces/msg/Log"
            else:
                msg, type_name = message(topic, i, t), TYPES[topic]
            writer.write(conns[topic], int((t + 0.002) * 1e9), TS.serialize_cdr(msg, type_name))
    return path


MAPPING = {
    "task": "lift",
    "source": "teleop",
    "operator": "bag-test",
    "control_hz": 10,
    "episodes": {"split": "topic", "topic": "/spacenav/joy", "button": 0},
    "streams": [
        {"topic": "/camera/front/color/image_raw", "key": "camera_front"},
        {"topic": "/camera/wrist/color/image_raw/compressed", "key": "camera_wrist"},
        {"topic": "/franka/joint_states", "key": "robot_joint_positions", "joints": JOINTS[:7]},
        {
            "topic": "/franka/joint_states",
            "key": "robot_joint_velocities",
            "field": "velocity",
            "joints": JOINTS[:7],
        },
        {"topic": "/franka/ee_pose", "key": "robot_ee_pose"},
        {"topic": "/franka/target_pose", "key": "action", "type": "geometry_msgs/msg/PoseStamped"},
        {"topic": "/spacenav/twist_stamped", "key": "teleop_twist"},
    ],
    "ignore": ["/rosout"],
}


def mapping_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({**MAPPING, **changes}))
    return path


def newest(topic: str, t: np.ndarray) -> np.ndarray:
    """Index of the newest message stamped at or before each t (ground truth, by formula)."""
    rate, offset = RATES[topic]
    return np.floor((t - T0 - offset) * rate + 1e-9).astype(int)


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_round_trip_both_storage_formats(tmp_path, storage):
    bag = write_bag(tmp_path / "bag", storage)
    store = tmp_path / "demos.zarr"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "store",
            "import-bag",
            str(bag),
            "--store",
            str(store),
            "--map",
            str(mapping_file(tmp_path)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "imported episodes 0..1 (42 steps)" in result.stdout
    assert "import bag" in result.stderr  # the progress bar
    assert validate(store) == []
    reader = StoreReader(store)
    assert reader.num_episodes == 2
    for e, (start, end) in enumerate([PRESSES_S[:2], PRESSES_S[2:]]):
        ep = reader.episode(e)
        assert (ep.info.task, ep.info.source, ep.info.operator) == ("lift", "teleop", "bag-test")
        data = reader.read_episode(e)
        t = data["timestamp"]
        np.testing.assert_allclose(t, T0 + np.arange(start, end + 0.05, 0.1), atol=1e-6)
        for key, topic, n in [
            ("robot_ee_pose", "/franka/ee_pose", 7),
            ("action", "/franka/target_pose", 7),
            ("teleop_twist", "/spacenav/twist_stamped", 6),
        ]:
            expected = np.stack([value(topic, i, n) for i in newest(topic, t)])
            np.testing.assert_array_equal(data[key], expected)
        joints = newest("/franka/joint_states", t)
        np.testing.assert_array_equal(
            data["robot_joint_positions"],
            np.stack([value("/franka/joint_states", i, 9)[:7] for i in joints]),
        )
        np.testing.assert_array_equal(
            data["robot_joint_velocities"],
            -np.stack([value("/franka/joint_states", i, 9)[:7] for i in joints]),
        )
        for key, topic, base in [
            ("camera_front", "/camera/front/color/image_raw", 0),
            ("camera_wrist", "/camera/wrist/color/image_raw/compressed", 100),
        ]:
            index = newest(topic, t)
            rate, offset = RATES[topic]
            np.testing.assert_allclose(
                data[f"{key}_timestamp"], T0 + offset + index / rate, atol=1e-6
            )
            truth = np.stack([image(base + i) for i in index]).astype(int)
            error = np.abs(data[key].astype(int) - truth)
            assert error.mean() < 3, key  # JPEG in the store (and in the bag, for wrist)
            # and each row is its own frame, not a neighbour's (the red block moves).
            wrong = np.stack([image(base + i + 1) for i in index]).astype(int)
            assert np.abs(data[key].astype(int) - wrong).mean() > 2 * error.mean()
        spec = reader.schema.keys["camera_front"]
        assert spec.shape == (H, W, 3) and spec.frame == "front_color_optical_frame"
        assert reader.schema.keys["robot_ee_pose"].frame == "fr3_link0"


def test_gap_split_and_one_episode_per_bag(tmp_path):
    store = tmp_path / "demos.zarr"
    ignore = ["/rosout", "/spacenav/joy"]
    bag = write_bag(tmp_path / "bag", StoragePlugin.MCAP)
    summary = import_bag(
        bag,
        store,
        load_mapping(mapping_file(tmp_path, episodes={"split": "bag"}, ignore=ignore)),
        progress=False,
    )
    # From the first instant every stream has a message (wrist, 0.011 s) to the last wrist
    # frame (6.944 s), the stream that ends first: 70 steps at 10 Hz.
    assert (summary.episodes, summary.steps) == (1, 70)
    paused = write_bag(tmp_path / "paused", StoragePlugin.MCAP, pause_s=(3.0, 4.5))
    summary = import_bag(
        paused,
        store,
        load_mapping(
            mapping_file(tmp_path, episodes={"split": "gap", "gap_s": 0.5}, ignore=ignore)
        ),
        progress=False,
    )
    assert (summary.first_episode, summary.episodes) == (1, 2)
    reader = StoreReader(store)
    first, second = (reader.read_episode(i)["timestamp"] - T0 for i in (1, 2))
    assert first[0] == pytest.approx(0.011, abs=1e-6) and first[-1] < 3.0
    assert second[0] == pytest.approx(0.011 + 68 / 15, abs=1e-6)  # the first wrist frame
    assert second[-1] < 7.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ignore": []}, "topic(s) /rosout (rcl_interfaces/msg/Log) are not in the mapping"),
        (
            {"streams": MAPPING["streams"] + [{"topic": "/camera/side/image_raw", "key": "side"}]},
            "mapped topic(s) /camera/side/image_raw are not in the bag",
        ),
        (
            {"streams": MAPPING["streams"] + [{"topic": "/rosout", "key": "log"}]},
            "topic /rosout has message type rcl_interfaces/msg/Log, which import-bag does not "
            "convert",
        ),
        (
            {
                "streams": [
                    {**s, "type": "geometry_msgs/msg/TwistStamped"}
                    if s["topic"] == "/franka/ee_pose"
                    else s
                    for s in MAPPING["streams"]
                ]
            },
            "topic /franka/ee_pose has type geometry_msgs/msg/PoseStamped, the mapping expects "
            "geometry_msgs/msg/TwistStamped",
        ),
        (
            {"max_age_s": 0.03},
            "topic /camera/wrist/color/image_raw/compressed has no message in the 0.03 s before",
        ),
        (
            {
                "episodes": {"split": "topic", "topic": "/franka/ee_pose"},
                "ignore": ["/rosout", "/spacenav/joy"],
            },
            "episodes.topic /franka/ee_pose has type geometry_msgs/msg/PoseStamped",
        ),
    ],
)
def test_bag_and_mapping_that_disagree_fail_with_a_clear_error(tmp_path, changes, message):
    bag = write_bag(tmp_path / "bag", StoragePlugin.SQLITE3)
    with pytest.raises(MappingError) as error:
        import_bag(
            bag,
            tmp_path / "s.zarr",
            load_mapping(mapping_file(tmp_path, **changes)),
            progress=False,
        )
    assert message in str(error.value)
    assert not (tmp_path / "s.zarr").exists()  # nothing written before the bag was checked


def test_bag_with_a_message_type_of_its_own(tmp_path):
    """A custom type (definition only in the bag): fine when ignored, an error when mapped."""
    from rosbags.typesys import get_types_from_msg

    store = get_typestore(Stores.ROS2_JAZZY)
    store.register(get_types_from_msg("int32 a\nstring b\n", "lab_msgs/msg/Gizmo"))
    bag = tmp_path / "gizmo"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        pose = writer.add_connection(
            "/franka/ee_pose", "geometry_msgs/msg/PoseStamped", typestore=TS
        )
        gizmo = writer.add_connection("/gizmo", "lab_msgs/msg/Gizmo", typestore=store)
        for i in range(20):
            t = T0 + i / 20
            writer.write(
                pose,
                int(t * 1e9),
                TS.serialize_cdr(message("/franka/ee_pose", i, t), "geometry_msgs/msg/PoseStamped"),
            )
            writer.write(
                gizmo,
                int(t * 1e9),
                store.serialize_cdr(
                    store.types["lab_msgs/msg/Gizmo"](a=i, b="x"), "lab_msgs/msg/Gizmo"
                ),
            )
    streams = [{"topic": "/franka/ee_pose", "key": "robot_ee_pose"}]
    summary = import_bag(
        bag,
        tmp_path / "ok.zarr",
        load_mapping(
            mapping_file(tmp_path, streams=streams, episodes={"split": "bag"}, ignore=["/gizmo"])
        ),
        progress=False,
    )
    assert summary.steps == 10
    with pytest.raises(
        MappingError,
        match="topic /gizmo has message type lab_msgs/msg/Gizmo, which import-bag does not convert",
    ):
        import_bag(
            bag,
            tmp_path / "no.zarr",
            load_mapping(
                mapping_file(
                    tmp_path,
                    streams=[*streams, {"topic": "/gizmo", "key": "gizmo"}],
                    episodes={"split": "bag"},
                    ignore=[],
                )
            ),
            progress=False,
        )


def test_bad_mapping_file(tmp_path):
    with pytest.raises(MappingError, match="unknown field.*'topics'"):
        load_mapping(mapping_file(tmp_path, topics={}))
    with pytest.raises(MappingError, match="field 'positions' is not one of position"):
        load_mapping(
            mapping_file(tmp_path, streams=[{"topic": "/a", "key": "a", "field": "positions"}])
        )
