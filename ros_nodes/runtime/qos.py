"""The ROS 2 QoS profiles the nodes use (see ROS_INTERFACES.md, QoS)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reliability(enum.Enum):
    RELIABLE = "reliable"
    BEST_EFFORT = "best_effort"


class Durability(enum.Enum):
    VOLATILE = "volatile"
    TRANSIENT_LOCAL = "transient_local"


@dataclass(frozen=True)
class QoSProfile:
    """Keep-last history of ``depth`` samples with a reliability and a durability.

    A best-effort writer does not match a reliable reader; volatile does not match
    transient local: pick the same profile on both ends, as ROS 2 drivers document.
    """

    depth: int
    reliability: Reliability = Reliability.RELIABLE
    durability: Durability = Durability.VOLATILE


DEFAULT = QoSProfile(depth=10)
SENSOR_DATA = QoSProfile(depth=5, reliability=Reliability.BEST_EFFORT)
LATCHED = QoSProfile(depth=1, durability=Durability.TRANSIENT_LOCAL)
# A recording node's reader of DEFAULT writers (state, commands, buttons): reliable like them
# (so it matches), with a deep reader-side history. The node's one loop pauses while it
# commits an episode to disk; keep-last 10 is a tenth of a second of a 100 Hz stream, and
# under load an episode's first command was overwritten meanwhile (seen in CI). History depth
# is local to the reader: it never affects matching.
RECORDING = QoSProfile(depth=1000)
# A recording node's reader of SENSOR_DATA camera writers: best effort like them (so it
# matches), with a second of frames of reader-side history, for the same pauses.
FRAME_RECORDING = QoSProfile(depth=30, reliability=Reliability.BEST_EFFORT)
