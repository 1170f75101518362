"""The mapping file of ``rl store import-bag``: which bag topic becomes which store key.

```yaml
task: lift                    # stored with every episode
source: teleop                # teleop | human_video | policy | intervention
operator: alice
success: true                 # bags carry no outcome: what every imported episode is marked
control_hz: 10                # the episode's clock: one store step every 1/control_hz s
max_age_s: 0.5                # a step whose newest message of a stream is older: an error
episodes:
  split: topic                # topic | gap | bag
  topic: /spacenav/joy        # Joy: each press of `button` starts/ends an episode;
  button: 0                   # std_msgs/Bool: true starts, false ends; String: start | end
  gap_s: 1.0                  # split: gap -- no mapped message for this long ends an episode
streams:
  - {topic: /camera/front/color/image_raw/compressed, key: camera_front}
  - {topic: /franka/joint_states, key: robot_joint_positions, field: position,
     joints: [fr3_joint1, fr3_joint2, fr3_joint3, fr3_joint4, fr3_joint5, fr3_joint6,
              fr3_joint7]}
  - {topic: /franka/ee_pose, key: robot_ee_pose}
  - {topic: /franka/target_pose, key: action, type: geometry_msgs/msg/PoseStamped}
  - {topic: /spacenav/twist_stamped, key: teleop_twist}
ignore: [/rosout, /parameter_events, /tf]
```

Every topic of the bag must be a stream, the split topic, or ignored: a topic nobody
mentioned is an error rather than data silently left behind. How each message type becomes
a row is in ``CONVERTERS`` (a row per message; images keep their header stamp in
``<key>_timestamp``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import yaml

from robot_learning.errors import InputError
from robot_learning.store import Codec, KeySpec, Source

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
JOY = "sensor_msgs/msg/Joy"
BOOL = "std_msgs/msg/Bool"
STRING = "std_msgs/msg/String"
SPLITS = ("topic", "gap", "bag")
JOINT_FIELDS = ("position", "velocity", "effort")


class MappingError(InputError):
    """A mapping file, or a bag that does not fit it; the message names topic and field."""


@dataclass(frozen=True)
class StreamMap:
    topic: str
    key: str
    type: str | None = None  # expected message type; None: whatever the bag has, if supported
    field: str = "position"  # JointState only
    joints: tuple[str, ...] = ()  # JointState only: these joints, in this order

    def is_image(self, msgtype: str) -> bool:
        return msgtype in (IMAGE, COMPRESSED_IMAGE)


@dataclass(frozen=True)
class Mapping:
    task: str
    streams: tuple[StreamMap, ...]
    source: Source = Source.TELEOP
    operator: str = ""
    control_hz: float = 10.0
    max_age_s: float = 0.5
    split: str = "bag"
    split_topic: str | None = None
    button: int = 0
    gap_s: float = 1.0
    ignore: frozenset[str] = frozenset()
    jpeg_quality: int = 90
    success: bool = True

    @property
    def topics(self) -> list[str]:
        return sorted({s.topic for s in self.streams})


def load_mapping(path: str | Path) -> Mapping:
    path = Path(path)
    if not path.is_file():
        raise MappingError(f"mapping file {path} not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML ({exc})") from exc
    where = str(path)
    doc = _mapping_of(doc, where)
    _only(
        doc,
        {
            "task",
            "source",
            "operator",
            "control_hz",
            "max_age_s",
            "episodes",
            "streams",
            "ignore",
            "jpeg_quality",
            "success",
        },
        where,
    )
    if "task" not in doc or "streams" not in doc:
        raise MappingError(f"{where}: 'task' and 'streams' are required")
    episodes = _mapping_of(doc.get("episodes", {}), f"{where}: episodes")
    _only(episodes, {"split", "topic", "button", "gap_s"}, f"{where}: episodes")
    split = episodes.get("split", "bag")
    if split not in SPLITS:
        raise MappingError(f"{where}: episodes.split {split!r} is not one of {', '.join(SPLITS)}")
    if split == "topic" and "topic" not in episodes:
        raise MappingError(f"{where}: episodes.split topic needs episodes.topic")
    raw_streams = doc["streams"]
    if not isinstance(raw_streams, list) or not raw_streams:
        raise MappingError(f"{where}: 'streams' must be a non-empty list")
    streams = []
    for i, item in enumerate(raw_streams):
        here = f"{where}: streams[{i}]"
        item = _mapping_of(item, here)
        _only(item, {"topic", "key", "type", "field", "joints"}, here)
        if "topic" not in item or "key" not in item:
            raise MappingError(f"{here}: needs 'topic' and 'key'")
        field = item.get("field", "position")
        if field not in JOINT_FIELDS:
            raise MappingError(f"{here}: field {field!r} is not one of {', '.join(JOINT_FIELDS)}")
        streams.append(
            StreamMap(
                topic=str(item["topic"]),
                key=str(item["key"]),
                type=item.get("type"),
                field=field,
                joints=tuple(item.get("joints", ())),
            )
        )
    keys = [s.key for s in streams]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise MappingError(f"{where}: key(s) {duplicates} are mapped from more than one stream")
    try:
        source = Source(doc.get("source", "teleop"))
    except ValueError as exc:
        raise MappingError(
            f"{where}: source {doc.get('source')!r} is not one of "
            f"{', '.join(s.value for s in Source)}"
        ) from exc
    mapping = Mapping(
        task=str(doc["task"]),
        streams=tuple(streams),
        source=source,
        operator=str(doc.get("operator", "")),
        control_hz=float(doc.get("control_hz", 10.0)),
        max_age_s=float(doc.get("max_age_s", 0.5)),
        split=split,
        split_topic=episodes.get("topic"),
        button=int(episodes.get("button", 0)),
        gap_s=float(episodes.get("gap_s", 1.0)),
        ignore=frozenset(doc.get("ignore", ())),
        jpeg_quality=int(doc.get("jpeg_quality", 90)),
        success=bool(doc.get("success", True)),
    )
    if mapping.control_hz <= 0 or mapping.max_age_s <= 0 or mapping.gap_s <= 0:
        raise MappingError(f"{where}: control_hz, max_age_s and gap_s must be positive")
    return mapping


def _mapping_of(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _only(doc: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise MappingError(f"{where}: unknown field(s) {unknown} (allowed: {sorted(allowed)})")


# ------------------------------------------------------------------------------ messages
def header_stamp_s(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def image_array(msg: Any, msgtype: str, where: str) -> np.ndarray:
    """An Image or CompressedImage as (H, W, 3) uint8 RGB, or (H, W) uint16 depth in mm."""
    if msgtype == COMPRESSED_IMAGE:
        fmt = msg.format.lower()
        data = bytes(msg.data)
        if "jpeg" in fmt or "jpg" in fmt:
            image = imagecodecs.jpeg8_decode(data)
        elif "png" in fmt:
            image = imagecodecs.png_decode(data)
        else:
            raise MappingError(f"{where}: compressed format {msg.format!r} is not jpeg or png")
        return _rgb(image, where) if image.dtype == np.uint8 else image.astype(np.uint16)
    channels, dtype = {
        "rgb8": (3, np.uint8),
        "bgr8": (3, np.uint8),
        "rgba8": (4, np.uint8),
        "bgra8": (4, np.uint8),
        "mono8": (1, np.uint8),
        "16uc1": (1, np.uint16),
        "mono16": (1, np.uint16),
    }.get(msg.encoding.lower(), (0, None))
    if dtype is None:
        raise MappingError(
            f"{where}: image encoding {msg.encoding!r} is not supported "
            "(rgb8, bgr8, rgba8, bgra8, mono8, 16UC1, mono16)"
        )
    itemsize = np.dtype(dtype).itemsize
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, : msg.width * channels * itemsize].copy()
    image = pixels.view(dtype if not msg.is_bigendian else np.dtype(dtype).newbyteorder(">"))
    image = image.reshape(msg.height, msg.width, channels).astype(dtype)
    if dtype == np.uint16:
        return image[..., 0]
    if msg.encoding.lower().startswith("bgr"):
        image = image[..., [2, 1, 0]]
    return _rgb(image, where)


def _rgb(image: np.ndarray, where: str) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def pose_vector(msg: Any) -> np.ndarray:
    p, q = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])


def twist_vector(msg: Any) -> np.ndarray:
    v, w = msg.twist.linear, msg.twist.angular
    return np.array([v.x, v.y, v.z, w.x, w.y, w.z])


def joint_vector(msg: Any, stream: StreamMap, where: str) -> np.ndarray:
    values = np.asarray(getattr(msg, stream.field), dtype=np.float64)
    names = list(msg.name)
    if len(values) != len(names):
        raise MappingError(
            f"{where}: {len(names)} joint names but {len(values)} "
            f"{stream.field} values (is '{stream.field}' recorded on this topic?)"
        )
    if not stream.joints:
        return values
    missing = [j for j in stream.joints if j not in names]
    if missing:
        raise MappingError(f"{where}: joints {missing} are not in the message (it has {names})")
    return values[[names.index(j) for j in stream.joints]]


@dataclass(frozen=True)
class Converter:
    """How one message type becomes a row, and the key it is stored under."""

    row: Callable[[Any, StreamMap, str, str], np.ndarray]  # (msg, stream, msgtype, where)
    spec: Callable[[Any, StreamMap, str, int], KeySpec]  # (first msg, stream, msgtype, quality)


def _image_spec(msg: Any, stream: StreamMap, msgtype: str, quality: int) -> KeySpec:
    image = image_array(msg, msgtype, stream.topic)
    frame = msg.header.frame_id
    if image.dtype == np.uint16:
        return KeySpec(
            image.shape,
            "uint16",
            Codec.DEPTH,
            units="mm",
            frame=frame,
            description=f"from {stream.topic}",
        )
    return KeySpec(
        image.shape,
        "uint8",
        Codec.JPEG,
        quality=quality,
        frame=frame,
        description=f"from {stream.topic}",
    )


_IMAGE = Converter(row=lambda m, s, t, w: image_array(m, t, w), spec=_image_spec)
CONVERTERS: dict[str, Converter] = {
    IMAGE: _IMAGE,
    COMPRESSED_IMAGE: _IMAGE,
    JOINT_STATE: Converter(
        row=lambda m, s, t, w: joint_vector(m, s, w),
        spec=lambda m, s, t, q: KeySpec(
            (len(s.joints or m.name),),
            "float64",
            units={"position": "rad", "velocity": "rad/s", "effort": "Nm"}[s.field],
            description=f"{s.field} of {', '.join(s.joints or m.name)} from {s.topic}",
        ),
    ),
    POSE_STAMPED: Converter(
        row=lambda m, s, t, w: pose_vector(m),
        spec=lambda m, s, t, q: KeySpec(
            (7,),
            "float64",
            units="m, quaternion xyzw",
            frame=m.header.frame_id,
            description=f"from {s.topic}",
        ),
    ),
    TWIST_STAMPED: Converter(
        row=lambda m, s, t, w: twist_vector(m),
        spec=lambda m, s, t, q: KeySpec(
            (6,),
            "float64",
            units="m/s, rad/s",
            frame=m.header.frame_id,
            description=f"from {s.topic}",
        ),
    ),
}
SPLIT_TYPES = (JOY, BOOL, STRING)
