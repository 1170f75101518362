"""Cameras that OpenCV opens (V4L2 webcams, video files, stream URLs) as ``Camera``.

A background thread decodes frames so ``read`` can honour its timeout (``cv2.VideoCapture``
blocks on its own). Live sources keep only the newest ``buffer_frames`` frames (old ones are
dropped); video files deliver every frame in order, paced by the reader, and end with a
``CameraTimeoutError`` that says the stream ended.

Intrinsics, in order of precedence: the ``intrinsics`` argument; a calibration YAML
(:func:`load_intrinsics_yaml`: ROS ``camera_info`` YAML, OpenCV ``FileStorage`` YAML, or flat
``width/height/fx/fy/cx/cy/distortion``); else a *nominal* pinhole from the image width and
``horizontal_fov_deg`` (fx = fy = (W/2) / tan(HFOV/2), principal point at the image centre
((W-1)/2, (H-1)/2), no distortion) -- good enough to view, not to measure (logged).

Timestamps (station clock = ``time.time()``): for live V4L2 sources the kernel's buffer
timestamp (``CAP_PROP_POS_MSEC``, CLOCK_MONOTONIC) is moved onto the wall clock when it is
plausible (:func:`monotonic_ms_to_station_s`), else the host time when the frame was
dequeued. Video files: the time the file was opened plus the frame's media time.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import stat
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from robot_learning.errors import RobotLearningError
from robot_learning.hardware.camera import (
    Camera,
    CameraFrame,
    CameraIntrinsics,
    CameraTimeoutError,
    checked_T_base_camera,
)

log = logging.getLogger(__name__)

_CONSECUTIVE_FAILURES_LIVE = 30  # failed grabs before a live source counts as gone


class CameraOpenError(RobotLearningError, RuntimeError):
    """OpenCV could not open the device, file or URL (the message names it)."""


def nominal_intrinsics(width: int, height: int, horizontal_fov_deg: float) -> CameraIntrinsics:
    """A distortion-free pinhole with the given horizontal field of view."""
    if not 0.0 < horizontal_fov_deg < 180.0:
        raise ValueError(f"horizontal_fov_deg must be in (0, 180), got {horizontal_fov_deg}")
    f = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
    return CameraIntrinsics(
        width=width, height=height, fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0
    )


def load_intrinsics_yaml(path: str | Path) -> CameraIntrinsics:
    """Intrinsics from a ROS camera_info YAML, an OpenCV FileStorage YAML or a flat YAML."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"camera calibration file not found: {path}")
    text = path.read_text()
    if text.startswith("%YAML:1.0"):
        return _load_opencv_storage(path)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping, got {type(data).__name__}")

    def need(key: str) -> object:
        if key not in data:
            raise ValueError(f"{path}: missing field {key!r}")
        return data[key]

    try:
        if "camera_matrix" in data:  # ROS camera_calibration / camera_info_manager format
            K = np.asarray(need("camera_matrix")["data"], dtype=np.float64).reshape(3, 3)
            dist = need("distortion_coefficients")["data"]
            return CameraIntrinsics(
                width=int(need("image_width")),
                height=int(need("image_height")),
                fx=float(K[0, 0]),
                fy=float(K[1, 1]),
                cx=float(K[0, 2]),
                cy=float(K[1, 2]),
                distortion=tuple(float(d) for d in dist),
            )
        return CameraIntrinsics(
            width=int(need("width")),
            height=int(need("height")),
            fx=float(need("fx")),
            fy=float(need("fy")),
            cx=float(need("cx")),
            cy=float(need("cy")),
            distortion=tuple(float(d) for d in data.get("distortion", (0.0,) * 5)),
        )
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{path}: malformed camera calibration ({exc!r})") from exc


def _load_opencv_storage(path: Path) -> CameraIntrinsics:
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        K = fs.getNode("camera_matrix").mat()
        dist = fs.getNode("distortion_coefficients").mat()
        width, height = fs.getNode("image_width").real(), fs.getNode("image_height").real()
    finally:
        fs.release()
    if K is None or K.shape != (3, 3) or not width or not height:
        raise ValueError(
            f"{path}: OpenCV YAML needs camera_matrix (3x3), image_width and image_height"
        )
    return CameraIntrinsics(
        width=int(width),
        height=int(height),
        fx=float(K[0, 0]),
        fy=float(K[1, 1]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        distortion=tuple(float(d) for d in (dist.ravel() if dist is not None else [])),
    )


def monotonic_ms_to_station_s(
    pos_ms: float, received_s: float, *, wall_minus_monotonic_s: float, max_delay_s: float = 1.0
) -> float:
    """A V4L2 buffer time (CLOCK_MONOTONIC ms) on the wall clock, or ``received_s``.

    Drivers that stamp with another clock (or none: 0) give implausible values; those fall
    back to the dequeue time rather than inventing a capture time.
    """
    candidate_s = pos_ms / 1000.0 + wall_minus_monotonic_s
    if pos_ms > 0.0 and 0.0 <= received_s - candidate_s <= max_delay_s:
        return candidate_s
    return received_s


def _is_live(source: int | str | Path) -> bool:
    if isinstance(source, int):
        return True
    text = str(source)
    if "://" in text:
        return True
    try:
        return stat.S_ISCHR(Path(text).stat().st_mode)
    except OSError:
        return False


class OpenCVCamera(Camera):
    """A color camera read through ``cv2.VideoCapture``; RGB out, no depth."""

    def __init__(
        self,
        *,
        name: str = "opencv",
        source: int | str | Path,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        intrinsics: CameraIntrinsics | None = None,
        calibration_path: str | Path | None = None,
        horizontal_fov_deg: float = 70.0,
        extrinsics: np.ndarray | None = None,
        buffer_frames: int = 4,
    ) -> None:
        super().__init__(name)
        self.source = source
        self.is_live = _is_live(source)
        self.width, self.height, self.fps = width, height, fps
        self.horizontal_fov_deg = horizontal_fov_deg
        self.buffer_frames = buffer_frames
        if intrinsics is None and calibration_path is not None:
            intrinsics = load_intrinsics_yaml(calibration_path)
        self._intrinsics = intrinsics
        self._extrinsics = checked_T_base_camera(extrinsics, name)
        self._cap: cv2.VideoCapture | None = None
        self._queue: queue.Queue[CameraFrame] = queue.Queue()
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._end_reason = ""
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"OpenCVCamera(name={self.name!r}, source={self.source!r})"

    @property
    def is_connected(self) -> bool:
        return self._cap is not None

    def connect(self) -> None:
        if self._cap is not None:
            return
        if not self.is_live and not Path(self.source).is_file():
            raise FileNotFoundError(f"camera {self.name!r}: video file not found: {self.source}")
        cap = self._open_capture()
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if self._intrinsics is None:
            self._intrinsics = nominal_intrinsics(width, height, self.horizontal_fov_deg)
            log.warning(
                "camera %r: no calibration; nominal pinhole from %.1f deg HFOV",
                self.name,
                self.horizontal_fov_deg,
            )
        elif (self._intrinsics.width, self._intrinsics.height) != (width, height):
            cap.release()
            raise ValueError(
                f"camera {self.name!r}: calibration is for {self._intrinsics.width}x"
                f"{self._intrinsics.height} but {self.source} delivers {width}x{height}"
            )
        self.width, self.height = width, height
        self._queue = queue.Queue(maxsize=self.buffer_frames)
        self._stop.clear()
        self._ended.clear()
        self._cap = cap
        self._thread = threading.Thread(
            target=self._reader, args=(cap, time.time()), name=f"camera-{self.name}", daemon=True
        )
        self._thread.start()

    def _open_capture(self) -> cv2.VideoCapture:
        if isinstance(self.source, int):
            backend = cv2.CAP_V4L2 if hasattr(cv2, "CAP_V4L2") else cv2.CAP_ANY
            cap = cv2.VideoCapture(self.source, backend)
        else:
            cap = cv2.VideoCapture(str(self.source))
        if not cap.isOpened():
            cap.release()
            raise CameraOpenError(f"camera {self.name!r}: OpenCV cannot open {self.source!r}")
        if self.is_live:
            for prop, value in (
                (cv2.CAP_PROP_FRAME_WIDTH, self.width),
                (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                (cv2.CAP_PROP_FPS, self.fps),
            ):
                if value is not None:
                    cap.set(prop, float(value))
        return cap

    def disconnect(self) -> None:
        if self._cap is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.warning("camera %r: reader thread did not stop within 5 s", self.name)
        self._cap.release()
        self._cap, self._thread = None, None

    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._intrinsics is None:
            if self.width is None or self.height is None:
                raise RuntimeError(
                    f"camera {self.name!r}: no calibration and image size unknown; connect first"
                )
            return nominal_intrinsics(self.width, self.height, self.horizontal_fov_deg)
        return self._intrinsics

    @property
    def extrinsics(self) -> np.ndarray | None:
        return self._extrinsics

    def read(self, timeout_s: float = 1.0) -> CameraFrame:
        if self._cap is None:
            raise RuntimeError(f"camera {self.name!r} ({self.source}) is not connected")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._queue.get(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if self._ended.is_set() and self._queue.empty():
                    raise CameraTimeoutError(f"camera {self.name!r}: {self._end_reason}") from None
                if time.monotonic() >= deadline:
                    raise CameraTimeoutError(
                        f"camera {self.name!r} ({self.source}): no frame within {timeout_s:.3f} s"
                    ) from None

    def read_latest(self, max_age_s: float) -> CameraFrame:
        """The newest decoded frame (older queued ones are discarded); stale -> timeout error."""
        latest = None
        while True:
            try:
                latest = self._queue.get_nowait()
            except queue.Empty:
                break
        frame = latest if latest is not None else self.read(timeout_s=max_age_s)
        if frame.age_s > max_age_s:
            raise CameraTimeoutError(
                f"camera {self.name!r} ({self.source}): latest frame is {frame.age_s:.3f} s old "
                f"(max {max_age_s:.3f} s)"
            )
        return frame

    def _reader(self, cap: cv2.VideoCapture, opened_s: float) -> None:
        """Decode frames until stopped, the file ends or a live source keeps failing."""
        index, failures = 0, 0
        while not self._stop.is_set():
            ok, bgr = cap.read()
            received_s = time.time()
            if not ok:
                failures += 1
                if not self.is_live:
                    self._end(f"end of video file {self.source} after {index} frames")
                    return
                if failures >= _CONSECUTIVE_FAILURES_LIVE:
                    self._end(f"{self.source} stopped delivering frames ({failures} failed reads)")
                    return
                time.sleep(0.01)
                continue
            failures = 0
            pos_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            if self.is_live:
                stamp_s = monotonic_ms_to_station_s(
                    pos_ms, received_s, wall_minus_monotonic_s=time.time() - time.monotonic()
                )
            else:
                stamp_s = opened_s + pos_ms / 1000.0
            frame = CameraFrame(
                color=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                timestamp_s=stamp_s,
                received_s=received_s,
                frame_index=index,
                camera_name=self.name,
            )
            index += 1
            self._deliver(frame)

    def _deliver(self, frame: CameraFrame) -> None:
        if self.is_live:  # keep the newest: drop the oldest when full
            while True:
                try:
                    self._queue.put_nowait(frame)
                    return
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()
        while not self._stop.is_set():  # files: every frame, in order
            try:
                self._queue.put(frame, timeout=0.05)
                return
            except queue.Full:
                continue

    def _end(self, reason: str) -> None:
        self._end_reason = reason
        self._ended.set()
        log.info("camera %r: %s", self.name, reason)
