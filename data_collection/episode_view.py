"""``rl store view``: look at one episode: every camera with its motion tracks drawn on it,
the action and state, who was in control.

Three outputs. A rerun viewer (``rerun-sdk``) listening on 127.0.0.1:9876 (``--port``) gets
the episode streamed to it; with no viewer open, or ``--out FILE.rrd``, a rerun recording is
written (``rerun FILE.rrd`` opens it). ``--out FILE.mp4`` (H.264, PyAV) or ``FILE.gif``
(Pillow) writes a strip instead: the cameras side by side, tracks drawn, a caption with step,
time, control source and gripper, at the store's step rate.
In rerun: ``cameras/<name>`` images with ``cameras/<name>/track`` points (one colour and
label per track point, missing ones left out), ``series/<key>`` one plot per
low-dim key (action, state, ...), ``control_source`` and ``events`` (each takeover), on a
``step`` timeline and, when the episode has timestamps, a ``time`` timeline.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_collection.hand_tracking.base import PointState
from robot_learning.keys import (
    CAMERA_PREFIX,
    CONTROL_SOURCE,
    GRIPPER_WIDTH,
    TIMESTAMP,
    TIMESTAMP_SUFFIX,
    TRACK_POINTS,
    track_key,
    track_state_key,
)
from robot_learning.runtime.controllers import ControlSource
from robot_learning.store import StoreError, StoreReader
from robot_learning.store.schema import MAIN_STREAM

VIEWER_HOST, VIEWER_PORT = "127.0.0.1", 9876  # where a rerun viewer listens by default
TRACK_COLORS = ((255, 64, 64), (64, 160, 255), (255, 220, 0))  # TRACK_POINTS order
_BATCH = 32  # frames read from the store at a time


@dataclass(frozen=True)
class EpisodeView:
    """One episode's rows, ready to show; frames are read as they are shown."""

    reader: StoreReader
    index: int
    fps: float
    rows: range  # main-stream rows of the episode
    cameras: dict[str, str]  # camera name -> store key (color images)
    tracks: dict[str, tuple[np.ndarray, np.ndarray]]  # camera -> points (T,3,2), state (T,3)
    series: dict[str, np.ndarray]  # low-dim key -> (T, n) values shown as plots
    times: np.ndarray | None  # (T,) station clock seconds
    control: np.ndarray | None  # (T,) ControlSource

    @property
    def length(self) -> int:
        return len(self.rows)

    def frames(self) -> Iterator[dict[str, np.ndarray]]:
        """Camera name -> frame, step after step."""
        for start in range(0, self.length, _BATCH):
            rows = list(self.rows[start : start + _BATCH])
            batch = {name: self.reader.read_frames(key, rows) for name, key in self.cameras.items()}
            for i in range(len(rows)):
                yield {name: frames[i] for name, frames in batch.items()}


def load_view(store: str | Path, index: int) -> EpisodeView:
    reader = StoreReader(store)
    try:
        episode = reader.episode(index)
    except IndexError as exc:
        raise StoreError(str(exc)) from exc
    recorded = set(episode.info.keys)
    main = [k for k in reader.schema.keys_of(MAIN_STREAM) if k in recorded]
    cameras = {
        k[len(CAMERA_PREFIX) :]: k
        for k in main
        if k.startswith(CAMERA_PREFIX)
        and reader.spec(k).is_image
        and reader.spec(k).shape[-1:] == (3,)
    }
    if not cameras:
        raise StoreError(
            f"{store}: episode {index} has no color camera to show "
            f"(keys: {', '.join(sorted(recorded))})"
        )
    lowdim = reader.read_episode(index, [k for k in main if not reader.spec(k).is_image])
    tracks = {
        name: (lowdim[track_key(name)], lowdim[track_state_key(name)])
        for name in cameras
        if track_key(name) in lowdim and track_state_key(name) in lowdim
    }
    shown = {track_key(n) for n in tracks} | {track_state_key(n) for n in tracks}
    series = {
        k: v.reshape(len(v), -1).astype(np.float64)
        for k, v in lowdim.items()
        if k not in shown
        and k != TIMESTAMP
        and not k.endswith(TIMESTAMP_SUFFIX)
        and k != CONTROL_SOURCE
        and v.ndim <= 2
    }
    rate = reader.schema.stream_rates_hz.get(MAIN_STREAM) or 10.0
    return EpisodeView(
        reader=reader,
        index=index,
        fps=float(rate),
        rows=range(*episode.rows[MAIN_STREAM]),
        cameras=cameras,
        tracks=tracks,
        series=series,
        times=lowdim.get(TIMESTAMP),
        control=lowdim.get(CONTROL_SOURCE),
    )


def control_name(value: int) -> str:
    try:
        return ControlSource(int(value)).name.lower()
    except ValueError:
        return f"unknown ({int(value)})"


# ------------------------------------------------------------------------------ rerun
def viewer_is_open(port: int = VIEWER_PORT) -> bool:
    try:
        with socket.create_connection((VIEWER_HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def to_rerun(
    view: EpisodeView, out: Path | None, *, port: int = VIEWER_PORT, progress: bool = False
) -> str:
    """Stream to the viewer on ``port`` (``out`` None) or write ``out`` (.rrd); returns
    where it went."""
    try:
        import rerun as rr
    except ImportError as exc:
        raise StoreError(
            "rerun output needs rerun-sdk: pip install "
            "'robot-learning-stack[view]' (or write --out FILE.mp4)"
        ) from exc
    info = view.reader.episode(view.index).info
    rec = rr.RecordingStream(
        "robot_learning", recording_id=f"{view.reader.fingerprint()}-{view.index}"
    )
    if out is None:
        url = f"rerun+http://{VIEWER_HOST}:{port}/proxy"
        rec.connect_grpc(url)
        where = f"the rerun viewer at {url}"
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        rec.save(str(out))
        where = str(out)
    rec.send_recording_name(f"{Path(view.reader.path).name} episode {view.index}")
    rec.log(
        "episode", rr.TextDocument(json.dumps(json.loads(info.to_json()), indent=2)), static=True
    )
    for key, values in view.series.items():
        names = [f"{key}[{i}]" for i in range(values.shape[1])]
        rec.log(f"series/{key}", rr.SeriesLines(names=names), static=True)
    previous = None
    for t, frames in enumerate(
        tqdm(view.frames(), total=view.length, unit="step", desc="view", disable=not progress)
    ):
        rec.set_time("step", sequence=t)
        if view.times is not None:
            rec.set_time("time", timestamp=float(view.times[t]))
        for name, image in frames.items():
            rec.log(f"cameras/{name}", rr.Image(image).compress(jpeg_quality=85))
            if name in view.tracks:
                points, state = view.tracks[name]
                seen = (state[t] != PointState.MISSING) & np.isfinite(points[t]).all(axis=1)
                rec.log(
                    f"cameras/{name}/track",
                    rr.Points2D(
                        points[t][seen],
                        colors=[TRACK_COLORS[i] for i in np.flatnonzero(seen)],
                        labels=[TRACK_POINTS[i] for i in np.flatnonzero(seen)],
                        radii=3.0,
                    ),
                )
        for key, values in view.series.items():
            rec.log(f"series/{key}", rr.Scalars(values[t]))
        if view.control is not None:
            source = int(view.control[t])
            rec.log("control_source", rr.Scalars(float(source)))
            if source != previous:
                rec.log("events", rr.TextLog(f"{control_name(source)} in control"))
            previous = source
    rec.flush()
    rec.disconnect()
    return where


# ------------------------------------------------------------------------ MP4 and GIF
def strip_frame(view: EpisodeView, t: int, frames: dict[str, np.ndarray]) -> np.ndarray:
    """Cameras side by side at one height, tracks drawn, a caption band below."""
    from PIL import Image, ImageDraw

    height = max(f.shape[0] for f in frames.values())
    images = []
    for name, frame in frames.items():
        image = Image.fromarray(frame)
        scale = height / frame.shape[0]
        if scale != 1:
            image = image.resize((round(frame.shape[1] * scale), height))
        draw = ImageDraw.Draw(image)
        if name in view.tracks:
            points, state = view.tracks[name]
            for i, ((u, v), s) in enumerate(zip(points[t] * scale, state[t], strict=True)):
                if s == PointState.MISSING or not np.isfinite([u, v]).all():
                    continue
                r = max(2, height // 60)
                fill = TRACK_COLORS[i] if s == PointState.DETECTED else None
                draw.ellipse((u - r, v - r, u + r, v + r), fill=fill, outline=TRACK_COLORS[i])
        draw.text((3, 2), name, fill=(255, 255, 255))
        images.append(image)
    width = sum(i.width for i in images)
    band = 14 if height < 200 else 24
    strip = Image.new("RGB", (width + width % 2, height + band + (height + band) % 2))
    x = 0
    for image in images:
        strip.paste(image, (x, 0))
        x += image.width
    caption = f"ep {view.index}  step {t}/{view.length - 1}"
    if view.times is not None:
        caption += f"  t={view.times[t] - view.times[0]:.2f}s"
    if view.control is not None:
        caption += f"  {control_name(view.control[t])}"
    if GRIPPER_WIDTH in view.series:
        caption += f"  gripper {view.series[GRIPPER_WIDTH][t, 0] * 1000:.0f} mm"
    ImageDraw.Draw(strip).text((3, height + 1), caption, fill=(255, 255, 255))
    return np.asarray(strip)


def to_video(view: EpisodeView, out: Path, *, progress: bool = False) -> str:
    strips = (
        strip_frame(view, t, frames)
        for t, frames in enumerate(
            tqdm(view.frames(), total=view.length, unit="step", desc="view", disable=not progress)
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(s) for s in strips]
        images[0].save(
            out,
            save_all=True,
            append_images=images[1:],
            loop=0,
            duration=round(1000 / view.fps),
            optimize=False,
        )
        return str(out)
    from robot_learning.store.video import VideoWriter

    first = next(strips)
    fps = round(view.fps) if abs(view.fps - round(view.fps)) < 1e-9 else view.fps
    with VideoWriter(
        out, fps=fps, width=first.shape[1], height=first.shape[0], codec="libx264", crf=20
    ) as writer:
        writer.write(first)
        for strip in strips:
            writer.write(strip)
    return str(out)


# ------------------------------------------------------------------------------- CLI
OUTPUTS = (".rrd", ".mp4", ".gif")


def view_episode(
    store: str | Path,
    index: int,
    out: Path | None,
    *,
    port: int = VIEWER_PORT,
    progress: bool = False,
) -> str:
    if out is not None and out.suffix.lower() not in OUTPUTS:
        raise StoreError(f"--out {out}: unknown kind; use one of {', '.join(OUTPUTS)}")
    view = load_view(store, index)
    if out is not None and out.suffix.lower() != ".rrd":
        return to_video(view, out, progress=progress)
    if out is None and not viewer_is_open(port):
        out = Path(f"{Path(str(store).rstrip('/')).stem}-episode{index}.rrd")
    return to_rerun(view, out, port=port, progress=progress)


def register(store_subparsers: argparse._SubParsersAction) -> None:
    parser = store_subparsers.add_parser(
        "view",
        help="show an episode: rerun viewer or .rrd, or an MP4/GIF strip",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("path", help="the store")
    parser.add_argument("episode", type=int)
    parser.add_argument(
        "--out",
        type=Path,
        help="FILE.rrd, FILE.mp4 or FILE.gif (default: "
        "the open rerun viewer, else STORE-episodeN.rrd here)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=VIEWER_PORT,
        help=f"the rerun viewer's port on {VIEWER_HOST} (default {VIEWER_PORT})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    where = view_episode(
        args.path, args.episode, args.out, port=args.port, progress=sys.stderr.isatty()
    )
    print(f"episode {args.episode} of {args.path} -> {where}")
    if where.endswith(".rrd"):
        print(f"open it with: rerun {where}")
    return 0
