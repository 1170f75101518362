"""The demonstration store: Zarr v3, many episodes appended over days, crash-safe.

Typical use::

    schema = StoreSchema(keys={
        "camera_front": KeySpec((480, 640, 3), "uint8", Codec.JPEG, frame="front_optical"),
        "robot_ee_pose": KeySpec((7,), "float64", units="m, quaternion xyzw", frame="fr3_link0"),
        "action": KeySpec((8,), "float64", description="target pose + gripper"),
        "timestamp": KeySpec((), "float64", units="s since epoch"),
    })
    with StoreWriter("demos.zarr", schema) as writer:
        writer.begin_episode(source="teleop", task="lift")
        for step in steps:
            writer.append(step)
        writer.commit(success=True)

    reader = StoreReader("demos.zarr")   # or an fsspec URL; sees committed episodes only
"""

from robot_learning.store.annotate import AnnotationReport, annotate_episodes
from robot_learning.store.episodes import Curation, Episode, EpisodeInfo
from robot_learning.store.errors import (
    NotAStoreError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreInputError,
    StoreLockedError,
)
from robot_learning.store.reader import StoreReader
from robot_learning.store.recovery import RecoveryReport, recover
from robot_learning.store.schema import (
    MAIN_STREAM,
    SCHEMA_VERSION,
    Codec,
    KeySpec,
    SchemaError,
    Source,
    StoreSchema,
)
from robot_learning.store.writer import StoreWriter

__all__ = [
    "MAIN_STREAM",
    "AnnotationReport",
    "SCHEMA_VERSION",
    "Codec",
    "Curation",
    "Episode",
    "EpisodeInfo",
    "KeySpec",
    "NotAStoreError",
    "RecoveryReport",
    "SchemaError",
    "Source",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreInputError",
    "StoreLockedError",
    "StoreReader",
    "StoreSchema",
    "StoreWriter",
    "annotate_episodes",
    "recover",
]
