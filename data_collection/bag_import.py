"""``rl store import-bag``: rosbag2 recordings (sqlite3 or mcap) into store episodes.

Two passes over the bag (both with a progress bar). The first reads every mapped message's
header stamp and the split topic, and decides the episodes and their steps: one step every
``1/control_hz`` s on the episode's own clock, from the first instant every stream has a
message to the operator's end press (or, at the end of a bag or of a burst, the last
message of the stream that ends first). Each step takes, per stream, the
newest message stamped at or before the step (the recorder's rule); a step whose newest
message is older than ``max_age_s`` is an error naming topic and time, never a silently
stale row. The second pass converts exactly the messages those steps use and appends each
step as soon as it is complete, so memory holds a few steps, not the bag.
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from data_collection.bag_mapping import (
    BOOL,
    CONVERTERS,
    JOY,
    SPLIT_TYPES,
    STRING,
    Mapping,
    MappingError,
    header_stamp_s,
    load_mapping,
)
from robot_learning.keys import TIMESTAMP, TIMESTAMP_SUFFIX
from robot_learning.store import KeySpec, StoreSchema, StoreWriter

log = logging.getLogger(__name__)


@dataclass
class EpisodePlan:
    """One episode: its step times and, per topic, the message ordinal each step uses."""

    steps_s: np.ndarray
    sources: dict[str, np.ndarray]  # topic -> ordinal (bag order within the topic) per step
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportSummary:
    first_episode: int
    episodes: int
    steps: int


def import_bag(
    bag: str | Path, store: str | Path, mapping: Mapping, *, progress: bool = True
) -> ImportSummary:
    try:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore
    except ImportError as exc:
        raise MappingError(
            "reading bags needs the rosbags package: pip install 'robot-learning-stack[ros]'"
        ) from exc

    bag = Path(bag)
    if not bag.exists():
        raise MappingError(f"bag {bag} not found")
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:  # AnyReaderError, and storage-specific errors on damaged files
        raise MappingError(f"{bag}: cannot open as a rosbag2 recording ({exc})") from exc
    try:
        types = _check_topics(bag, reader, mapping)
        stamps, specs, events = _index(bag, reader, mapping, types, progress)
        episodes = plan_episodes(bag, mapping, stamps, events)
        if not episodes:
            raise MappingError(
                f"{bag}: no episode with at least one step was found (split: {mapping.split})"
            )
        schema = _schema(mapping, specs, types)
        return _write(bag, store, reader, mapping, types, schema, episodes, progress)
    finally:
        reader.close()


def _check_topics(bag: Path, reader: Any, mapping: Mapping) -> dict[str, str]:
    """Topic -> message type, after checking the bag and the mapping agree."""
    types = {c.topic: c.msgtype for c in reader.connections}
    known = set(mapping.topics) | mapping.ignore | {mapping.split_topic}
    unmapped = sorted(set(types) - known)
    if unmapped:
        listed = ", ".join(f"{t} ({types[t]})" for t in unmapped)
        raise MappingError(
            f"{bag}: topic(s) {listed} are not in the mapping; add each under "
            "'streams' (to import it) or 'ignore'"
        )
    missing = sorted(set(mapping.topics) - set(types))
    if mapping.split == "topic" and mapping.split_topic not in types:
        missing.append(f"{mapping.split_topic} (episodes.topic)")
    if missing:
        raise MappingError(
            f"{bag}: mapped topic(s) {', '.join(missing)} are not in the bag "
            f"(it has: {', '.join(sorted(types))})"
        )
    for stream in mapping.streams:
        actual = types[stream.topic]
        if stream.type is not None and stream.type != actual:
            raise MappingError(
                f"{bag}: topic {stream.topic} has type {actual}, the mapping "
                f"expects {stream.type} (key {stream.key!r})"
            )
        if actual not in CONVERTERS:
            raise MappingError(
                f"{bag}: topic {stream.topic} has message type {actual}, which "
                f"import-bag does not convert (supported: "
                f"{', '.join(sorted(CONVERTERS))})"
            )
    if mapping.split == "topic" and types[mapping.split_topic] not in SPLIT_TYPES:
        raise MappingError(
            f"{bag}: episodes.topic {mapping.split_topic} has type "
            f"{types[mapping.split_topic]}; episodes split on "
            f"{', '.join(SPLIT_TYPES)}"
        )
    return types


def _deserialize(reader: Any, raw: bytes, connection: Any, bag: Path) -> Any:
    try:
        return reader.deserialize(raw, connection.msgtype)
    except Exception as exc:
        raise MappingError(
            f"{bag}: a message on {connection.topic} does not deserialize as "
            f"{connection.msgtype} ({exc})"
        ) from exc


def _index(
    bag: Path, reader: Any, mapping: Mapping, types: dict[str, str], progress: bool
) -> tuple[dict[str, np.ndarray], dict[str, KeySpec], list[tuple[float, str]]]:
    """Header stamps per stream topic (bag order), key specs, split events (time, kind)."""
    wanted = set(mapping.topics) | ({mapping.split_topic} if mapping.split == "topic" else set())
    connections = [c for c in reader.connections if c.topic in wanted]
    stamps: dict[str, list[float]] = defaultdict(list)
    specs: dict[str, KeySpec] = {}
    events: list[tuple[float, str]] = []
    pressed = False
    total = sum(c.msgcount for c in connections)
    bar = tqdm(total=total, desc=f"index {bag.name}", unit="msg", disable=not progress)
    for connection, logtime_ns, raw in reader.messages(connections=connections):
        bar.update()
        msg = _deserialize(reader, raw, connection, bag)
        topic = connection.topic
        if topic == mapping.split_topic and mapping.split == "topic":
            if connection.msgtype == JOY:
                now = mapping.button < len(msg.buttons) and bool(msg.buttons[mapping.button])
                if now and not pressed:
                    events.append((header_stamp_s(msg), "toggle"))
                pressed = now
            elif connection.msgtype == BOOL:
                events.append((logtime_ns * 1e-9, "start" if msg.data else "end"))
            elif connection.msgtype == STRING and msg.data in ("start", "end"):
                events.append((logtime_ns * 1e-9, msg.data))
            if topic not in mapping.topics:
                continue
        stamps[topic].append(header_stamp_s(msg))
        for stream in mapping.streams:
            if stream.topic == topic and stream.key not in specs:
                specs[stream.key] = CONVERTERS[connection.msgtype].spec(
                    msg, stream, connection.msgtype, mapping.jpeg_quality
                )
    bar.close()
    empty = sorted(t for t in mapping.topics if not stamps.get(t))
    if empty:
        raise MappingError(f"{bag}: mapped topic(s) {', '.join(empty)} have no messages")
    return {t: np.asarray(v) for t, v in stamps.items()}, specs, events


def plan_episodes(
    bag: Path, mapping: Mapping, stamps: dict[str, np.ndarray], events: list[tuple[float, str]]
) -> list[EpisodePlan]:
    """Episode intervals from the split rule, then steps aligned by header stamp."""
    everything = np.sort(np.concatenate(list(stamps.values())))
    if mapping.split == "bag":
        intervals = [(everything[0], everything[-1], {})]
    elif mapping.split == "gap":
        cuts = np.flatnonzero(np.diff(everything) > mapping.gap_s)
        starts = np.concatenate([[0], cuts + 1])
        ends = np.concatenate([cuts, [len(everything) - 1]])
        intervals = [(everything[a], everything[b], {}) for a, b in zip(starts, ends, strict=True)]
    else:
        intervals = _intervals_from_events(sorted(events), everything[-1])
    order = {t: np.argsort(s, kind="stable") for t, s in stamps.items()}
    ordered = {t: stamps[t][order[t]] for t in stamps}
    plans = []
    for start, end, notes in intervals:
        firsts, lasts = [], []
        for s in ordered.values():
            inside = s[(s >= start - mapping.max_age_s) & (s <= end)]
            if len(inside) == 0:
                firsts = []
                break
            firsts.append(inside[0])
            lasts.append(inside[-1])
        if not firsts:
            log.warning(
                "%s: no message of every stream in %.3f..%.3f s; no episode there", bag, start, end
            )
            continue
        # An operator's end press ends the episode there; the end of a bag or of a burst of
        # messages ends it at the last message of the stream that stopped first.
        explicit_end = mapping.split == "topic" and "ended_by" not in notes
        t0, t1 = max(start, max(firsts)), end if explicit_end else min(end, min(lasts))
        if t1 < t0:
            continue
        count = int(np.floor((t1 - t0) * mapping.control_hz + 1e-6)) + 1
        steps = t0 + np.arange(count) / mapping.control_hz
        sources = {}
        for topic, s in ordered.items():
            pos = np.searchsorted(s, steps, side="right") - 1
            age = steps - s[pos]
            if (age > mapping.max_age_s).any():
                k = int(np.argmax(age > mapping.max_age_s))
                raise MappingError(
                    f"{bag}: topic {topic} has no message in the {mapping.max_age_s} s before "
                    f"step {k} (stamp {steps[k]:.3f} s) of the episode starting at {t0:.3f} s: "
                    f"its newest is {age[k]:.3f} s old; raise max_age_s or check the recording"
                )
            sources[topic] = order[topic][pos]
        plans.append(EpisodePlan(steps, sources, {**notes, "bag_start_stamp_s": float(t0)}))
    return plans


def _intervals_from_events(
    events: list[tuple[float, str]], bag_end: float
) -> list[tuple[float, float, dict[str, Any]]]:
    intervals, start = [], None
    for time_s, kind in events:
        if start is None and kind in ("start", "toggle"):
            start = time_s
        elif start is not None and kind in ("end", "toggle"):
            intervals.append((start, time_s, {}))
            start = None
    if start is not None:
        intervals.append((start, bag_end, {"ended_by": "end of bag"}))
    return intervals


def _schema(mapping: Mapping, specs: dict[str, KeySpec], types: dict[str, str]) -> StoreSchema:
    keys = {
        TIMESTAMP: KeySpec((), "float64", units="s, header stamps", description="time of the step")
    }
    for stream in mapping.streams:
        keys[stream.key] = specs[stream.key]
        if specs[stream.key].is_image:
            keys[stream.key + TIMESTAMP_SUFFIX] = KeySpec(
                (),
                "float64",
                units="s, header stamps",
                description=f"header stamp of the {stream.topic} message used",
            )
    return StoreSchema(keys=keys, stream_rates_hz={"step": mapping.control_hz})


def _write(
    bag: Path,
    store: str | Path,
    reader: Any,
    mapping: Mapping,
    types: dict[str, str],
    schema: StoreSchema,
    episodes: list[EpisodePlan],
    progress: bool,
) -> ImportSummary:
    # ordinal -> [(episode, step)] per topic: which steps each message fills.
    users: dict[str, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for e, plan in enumerate(episodes):
        for topic, ordinals in plan.sources.items():
            for k, ordinal in enumerate(ordinals.tolist()):
                users[topic][ordinal].append((e, k))
    rows: list[dict[int, dict[str, Any]]] = [defaultdict(dict) for _ in episodes]
    width = len(schema.keys)
    connections = [c for c in reader.connections if c.topic in mapping.topics]
    seen: dict[str, int] = defaultdict(int)
    current, next_step, total_steps = 0, 0, 0
    with StoreWriter(store, schema) as writer:
        first = writer.num_episodes
        bar = tqdm(
            total=sum(c.msgcount for c in connections),
            desc=f"import {bag.name}",
            unit="msg",
            disable=not progress,
        )
        for connection, _, raw in reader.messages(connections=connections):
            bar.update()
            topic = connection.topic
            ordinal = seen[topic]
            seen[topic] += 1
            targets = users[topic].get(ordinal)
            if not targets:
                continue
            msg = _deserialize(reader, raw, connection, bag)
            values = {}
            for stream in mapping.streams:
                if stream.topic == topic:
                    where = f"{bag}: {topic} message {ordinal}"
                    values[stream.key] = CONVERTERS[connection.msgtype].row(
                        msg, stream, connection.msgtype, where
                    )
                    if schema.keys[stream.key].is_image:
                        values[stream.key + TIMESTAMP_SUFFIX] = header_stamp_s(msg)
            for e, k in targets:
                rows[e][k].update(values)
            # Append every step that is complete, episode by episode.
            while current < len(episodes):
                plan = episodes[current]
                if next_step == 0 and not writer.in_episode:
                    writer.begin_episode(
                        source=mapping.source,
                        task=mapping.task,
                        operator=mapping.operator,
                        start_time_s=float(plan.steps_s[0]),
                        notes={
                            **plan.notes,
                            "bag": str(bag),
                            "split": mapping.split,
                            "control_hz": mapping.control_hz,
                        },
                    )
                row = rows[current].get(next_step)
                if row is None or len(row) != width - 1:
                    break
                writer.append({TIMESTAMP: plan.steps_s[next_step], **row})
                del rows[current][next_step]
                next_step += 1
                if next_step == len(plan.steps_s):
                    writer.commit(success=mapping.success)
                    total_steps += next_step
                    current, next_step = current + 1, 0
        bar.close()
        if current != len(episodes):
            raise MappingError(
                f"{bag}: episode {current} of the bag never completed: the "
                "second pass did not see the messages the first pass indexed"
            )
    return ImportSummary(first, len(episodes), total_steps)


def register(store_subparsers: argparse._SubParsersAction) -> None:
    parser = store_subparsers.add_parser(
        "import-bag",
        help="convert a rosbag2 recording (sqlite3 or mcap) into store episodes",
        description="Convert a rosbag2 recording into store episodes, as the mapping file "
        "says (see data_collection/bag_mapping.py for its format): images raw or "
        "compressed, joint states, poses, twists, aligned on the episode clock by "
        "header stamps; episodes split by a topic, a time gap, or one per bag.",
    )
    parser.add_argument("bag", type=Path, help="bag directory (metadata.yaml) or .mcap/.db3")
    parser.add_argument(
        "--store",
        type=Path,
        required=True,
        help="store path (created if missing, appended otherwise)",
    )
    parser.add_argument(
        "--map",
        type=Path,
        required=True,
        dest="mapping",
        help="mapping YAML: topics to keys, control rate, episode split",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    mapping = load_mapping(args.mapping)
    summary = import_bag(args.bag, args.store, mapping, progress=True)
    last = summary.first_episode + summary.episodes - 1
    print(
        f"{args.store}: imported episodes {summary.first_episode}..{last} "
        f"({summary.steps} steps) of task {mapping.task!r} from {args.bag}"
    )
    return 0
