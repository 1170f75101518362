"""``rl human collect`` (film the task with two calibrated cameras) and ``rl human track``
(hand keypoints over the stored human episodes, offline)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robot_learning.errors import InputError, Interrupted
from robot_learning.hardware.camera import Camera
from robot_learning.keys import (
    HANDS,
    camera_timestamp_key,
    hand_keypoints_key,
    hand_state_key,
)
from robot_learning.store import KeySpec, Source

CAMERA_KINDS = ("realsense", "opencv")


def register(subparsers: argparse._SubParsersAction) -> None:
    human = subparsers.add_parser("human", help="human-video capture and hand tracking")
    children = human.add_subparsers(dest="human_command", metavar="COMMAND")
    human.set_defaults(func=lambda _args: human.print_help() or 2)

    c = children.add_parser(
        "collect",
        help="record human-video episodes from calibrated cameras",
        description="Film yourself doing the task: synchronized color (+ depth) from every "
        "camera into human_video episodes. Keys: b start, Enter stop (success), "
        "Backspace stop (failed), x discard, Ctrl-C quit.",
    )
    c.add_argument("--store", type=Path, required=True, help="store (created or appended)")
    c.add_argument(
        "--cameras",
        nargs="+",
        required=True,
        metavar="NAME=KIND[:ID]",
        help="e.g. front=realsense:841512070001 side=realsense:841512070002, or "
        "name=opencv:/dev/video0",
    )
    c.add_argument(
        "--calibration",
        type=Path,
        help="calibration YAML (default: $RL_CALIBRATION_DIR/<workcell>.yaml)",
    )
    c.add_argument("--workcell", default="lab", help="workcell whose calibration to use")
    c.add_argument(
        "--uncalibrated",
        action="store_true",
        help="record without camera poses (tracks cannot be triangulated)",
    )
    c.add_argument("--depth", action="store_true", help="also record aligned depth")
    c.add_argument("--size", default="480x640", help="HEIGHTxWIDTH of every camera")
    c.add_argument("--fps", type=int, default=30, help="camera frame rate")
    c.add_argument("--record-hz", type=float, default=15.0, help="steps per second stored")
    c.add_argument("--task", default="human")
    c.add_argument("--operator", default="")
    c.add_argument("--episodes", type=int, help="stop after this many committed episodes")
    c.add_argument("--device", default="keyboard", help="keyboard or spacemouse (buttons)")
    c.set_defaults(func=run_collect)

    t = children.add_parser(
        "track",
        help="hand keypoints of stored human episodes (offline)",
        description="Run a hand tracker over every human_video episode and camera, and store "
        "hand_keypoints_<cam> / hand_state_<cam> (gaps filled and flagged).",
    )
    t.add_argument("--store", type=Path, required=True)
    t.add_argument("--tracker", default="mediapipe", help="registered tracker name")
    t.add_argument("--cameras", nargs="+", help="cameras to track (default: all)")
    t.add_argument(
        "--max-gap-s",
        type=float,
        default=0.5,
        help="gaps up to this long are interpolated, longer ones left missing",
    )
    t.add_argument("--overwrite", action="store_true", help="re-track tracked episodes")
    t.set_defaults(func=run_track)


# -- collect -------------------------------------------------------------------------------
def open_camera(spec: str, *, size: tuple[int, int], fps: int, depth: bool) -> Camera:
    """``name=realsense[:serial]`` or ``name=opencv:device`` -> a Camera (not connected)."""
    name, sep, rest = spec.partition("=")
    kind, _, ident = rest.partition(":")
    if not sep or not name or kind not in CAMERA_KINDS:
        raise ValueError(
            f"--cameras {spec!r}: expected NAME=realsense[:SERIAL] or NAME=opencv:DEVICE"
        )
    height, width = size
    if kind == "realsense":
        from robot_learning.hardware.realsense import RealSenseCamera

        return RealSenseCamera(
            name=name, serial=ident or None, width=width, height=height, fps=fps, enable_depth=depth
        )
    if depth:
        raise ValueError(f"--cameras {spec!r}: an OpenCV camera has no depth; drop --depth")
    from robot_learning.hardware.opencv_camera import OpenCVCamera

    return OpenCVCamera(
        name=name,
        source=int(ident) if ident.isdigit() else ident,
        width=width,
        height=height,
        fps=fps,
    )


def episode_calibration(cameras: dict[str, Camera], args: argparse.Namespace) -> dict[str, Any]:
    """What each episode records about the calibration; refuses doubtful calibrations."""
    from data_collection.human_capture import capture_calibration

    return capture_calibration(
        {n: c.intrinsics for n, c in cameras.items()},
        serials={n: str(getattr(c, "serial", "") or "") for n, c in cameras.items()},
        path=args.calibration,
        workcell=args.workcell,
        uncalibrated=args.uncalibrated,
    )


def run_collect(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from data_collection.human_capture import CaptureConfig, HumanCapture, human_video_schema
    from robot_learning.sim.cli import parse_image_size
    from robot_learning.store import StoreWriter

    try:
        config = CaptureConfig(
            task=args.task,
            operator=args.operator,
            record_hz=args.record_hz,
            depth=args.depth,
            episodes=args.episodes,
        )
        size = parse_image_size(args.size)
        cameras = {}
        for spec in args.cameras:
            cam = open_camera(spec, size=size, fps=args.fps, depth=args.depth)
            cameras[cam.name] = cam
        with ExitStack() as stack:
            for cam in cameras.values():
                stack.enter_context(cam)
            calibration = episode_calibration(cameras, args)
            schema = human_video_schema(
                {n: c.intrinsics for n, c in cameras.items()},
                depth=args.depth,
                record_hz=args.record_hz,
            )
            writer = stack.enter_context(StoreWriter(args.store, schema))
            device = stack.enter_context(_device(args.device))
            summaries = HumanCapture(
                cameras=cameras,
                writer=writer,
                device=device,
                calibration=calibration,
                config=config,
            ).run()
    except KeyboardInterrupt:
        raise Interrupted("committed episodes are kept, the open one was discarded") from None
    except argparse.ArgumentTypeError as exc:
        raise InputError(str(exc)) from exc
    print(
        f"{args.store}: {len(summaries)} human_video episodes, frames per camera: "
        f"{[s.frames for s in summaries]}"
    )
    return 0


def _device(name: str) -> Any:
    if name == "keyboard":
        from robot_learning.hardware.keyboard import KeyboardTeleop

        return KeyboardTeleop()
    if name == "spacemouse":
        from robot_learning.hardware.spacemouse import SpaceMouse, button_map

        return SpaceMouse(config=button_map("episode"))  # right tap START, held FAIL
    raise ValueError(f"--device {name!r}: expected keyboard or spacemouse")


# -- track ---------------------------------------------------------------------------------
def hand_specs(cameras: list[str]) -> dict[str, KeySpec]:
    specs = {}
    for cam in cameras:
        specs[hand_keypoints_key(cam)] = KeySpec(
            (len(HANDS), 21, 2),
            "float32",
            units="px",
            description=f"both hands' 21 landmarks in {cam}, hands {HANDS}; NaN where missing",
        )
        specs[hand_state_key(cam)] = KeySpec(
            (len(HANDS),), "uint8", description="per hand: 0 missing, 1 detected, 2 filled"
        )
    return specs


def human_cameras(reader: Any) -> list[str]:
    """Cameras of a store: the color keys that have a capture-time key beside them."""
    from robot_learning.keys import CAMERA_PREFIX, camera_name

    keys = reader.schema.keys if hasattr(reader, "schema") else {}
    return sorted(
        camera_name(k)
        for k in keys
        if k.startswith(CAMERA_PREFIX)
        and not k.endswith("_timestamp")
        and camera_timestamp_key(camera_name(k)) in keys
    )


def track_rows(
    reader: Any, episodes: list[int], cameras: list[str], tracker: Any, max_gap_s: float
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    from data_collection.hand_tracking.sequence import TrackCoverage, track_frames
    from robot_learning.keys import camera_key

    for index in tqdm(episodes, desc="episodes", unit="episode"):
        start, stop = reader.episode(index).rows["step"]
        out = {}
        for cam in cameras:
            stamps = reader.read_rows(camera_timestamp_key(cam), start, stop)
            frames = (reader.read_frames(camera_key(cam), [row])[0] for row in range(start, stop))
            seq = track_frames(
                frames, stamps, tracker, max_gap_s=max_gap_s, desc=f"episode {index} {cam}"
            )
            tracker.close()  # next sequence starts afresh
            out[hand_keypoints_key(cam)] = seq.keypoints
            out[hand_state_key(cam)] = seq.state
            tqdm.write(f"episode {index} {cam}: {TrackCoverage.of(seq)}")
        yield index, out


def run_track(args: argparse.Namespace) -> int:
    from data_collection.hand_tracking.registry import make_tracker
    from robot_learning.store import StoreReader
    from robot_learning.store.annotate import annotate_episodes

    try:
        reader = StoreReader(args.store)
        episodes = reader.select(source=Source.HUMAN_VIDEO)
        if not episodes:
            raise ValueError(
                f"{args.store}: no human_video episode (record with `rl human collect`)"
            )
        cameras = args.cameras or human_cameras(reader)
        missing = [c for c in cameras if c not in human_cameras(reader)]
        if missing or not cameras:
            raise ValueError(
                f"{args.store}: no camera(s) {missing or cameras}; it has {human_cameras(reader)}"
            )
        if not args.overwrite:
            done = {
                i for i in episodes if hand_keypoints_key(cameras[0]) in reader.episode(i).info.keys
            }
            if done:
                print(f"skipping {len(done)} episodes already tracked (--overwrite re-tracks)")
            episodes = [i for i in episodes if i not in done]
        tracker = make_tracker(args.tracker)
        try:
            report = annotate_episodes(
                args.store,
                hand_specs(cameras),
                track_rows(reader, episodes, cameras, tracker, args.max_gap_s),
                overwrite=args.overwrite,
                allow_nonfinite=True,
            )
        finally:
            tracker.close()
    except ImportError as exc:  # the tracker's own dependencies are not installed
        raise InputError(f"tracker {args.tracker!r} cannot load: {exc}") from exc
    print(report.message())
    return 0
