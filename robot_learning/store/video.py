"""Video files through PyAV (FFmpeg): frames of a store to MP4 and back.

LeRobot stores camera streams as AV1 in MP4 (SVT-AV1, yuv420p, a key frame every 2 frames
so that random access decodes little); PyAV's wheels ship that encoder and the dav1d
decoder. Lossy: a decoded frame differs from the stored one by the codec's error (PSNR is
reported by the tests), never by position or count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

DEFAULT_CODEC = "libsvtav1"
DEFAULT_CRF = 30
KEYFRAME_INTERVAL = 2


def _av():  # noqa: ANN202
    try:
        import av
    except ImportError as exc:
        raise ImportError(
            "video needs PyAV: pip install 'robot-learning-stack[interop]' (or: pip install av)"
        ) from exc
    return av


class VideoWriter:
    """Append RGB frames (H, W, 3 uint8) to one MP4 at ``fps``; frame k is shown at k/fps s."""

    def __init__(
        self,
        path: Path,
        *,
        fps: int,
        width: int,
        height: int,
        codec: str = DEFAULT_CODEC,
        crf: int = DEFAULT_CRF,
    ) -> None:
        av = _av()
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner otherwise
        if width % 2 or height % 2:
            raise ValueError(f"{path}: yuv420p video needs even sizes, got {width}x{height}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.frames = 0
        self._fps = fps
        self._container = av.open(str(path), "w")
        options = {"g": str(KEYFRAME_INTERVAL)}
        if codec in ("libsvtav1", "libx264", "h264"):
            options["crf"] = str(crf)
        if codec == "libsvtav1":
            options["preset"] = "12"  # LeRobot's choice: fast, the quality set by crf
        try:
            self._stream = self._container.add_stream(codec, rate=fps, options=options)
        except Exception as exc:
            self._container.close()
            path.unlink(missing_ok=True)
            raise ValueError(
                f"video codec {codec!r} is not available in this FFmpeg ({exc})"
            ) from exc
        self._stream.pix_fmt = "yuv420p"
        self._stream.width = width
        self._stream.height = height
        self._stream.time_base = Fraction(1, fps)

    def write(self, frame: np.ndarray) -> None:
        av = _av()
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames
        video_frame.time_base = Fraction(1, self._fps)
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """(presentation time in s, RGB frame) of every frame, in order."""
    av = _av()
    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.* for missing or damaged files
        raise ValueError(f"{path}: cannot open as a video ({exc})") from exc
    with container:
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                yield float(frame.time), frame.to_ndarray(format="rgb24")
        except Exception as exc:
            raise ValueError(f"{path}: video data damaged ({exc})") from exc


def video_info(path: Path) -> dict[str, object]:
    """What LeRobot records in info.json about a feature's videos (its get_video_info)."""
    av = _av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {
            "video.height": stream.height,
            "video.width": stream.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": stream.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(stream.base_rate),
            "video.channels": 3,
            "has_audio": False,
        }
