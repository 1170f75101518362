"""Hand trackers by name: ``--tracker mediapipe`` and whatever a plugin adds.

One registration mechanism, as for ``rl`` commands: the ``robot_learning.hand_trackers``
entry points (pyproject.toml), each ``name = "module:factory"`` where ``factory(**options)``
returns a ``HandTracker``. A stronger tracker plugs in without touching this code: a package
installed on the GPU box (e.g. one wrapping HaMeR, which regresses MANO hands; take MANO's 21
joints in MediaPipe's order, ``base.NUM_LANDMARKS``) implements ``HandTracker.detect``
(RGB frame -> at most one ``HandObservation`` per side, pixel coordinates) and declares

    [project.entry-points."robot_learning.hand_trackers"]
    hamer = "hamer_tracker:HamerHandTracker"

after which ``rl human track --tracker hamer`` runs it over the same stored episodes.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from data_collection.hand_tracking.base import HandTracker
from robot_learning.errors import InputError

ENTRY_POINT_GROUP = "robot_learning.hand_trackers"


class UnknownTrackerError(InputError, LookupError):
    """No hand tracker is registered under that name (the message lists those that are)."""


def tracker_names() -> list[str]:
    return sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP))


def make_tracker(name: str, **options: Any) -> HandTracker:
    """The tracker registered as ``name``, built with ``options``."""
    found = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == name]
    if not found:
        raise UnknownTrackerError(
            f"no hand tracker named {name!r}; registered: {tracker_names() or 'none'} "
            f"(entry point group {ENTRY_POINT_GROUP!r}; reinstall with `make venv` if empty)"
        )
    tracker = found[0].load()(**options)
    if not isinstance(tracker, HandTracker):
        raise TypeError(
            f"hand tracker {name!r} ({found[0].value}) built a "
            f"{type(tracker).__name__}, not a HandTracker"
        )
    return tracker
