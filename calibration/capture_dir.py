"""A calibration capture on disk: images per camera and the hand pose of each capture, so a
calibration can be run (and re-run) offline, from a robot session or a hand-held board.

Layout::

    capture.yaml            board, cameras (name -> mount, serial), hand poses by index
    <camera>/<index>.png    RGB images (index zero-padded to 4 digits)

A hand-held board (manual capture) has no hand poses: intrinsics and camera-to-camera
extrinsics still work, hand-eye does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from calibration.calibration_file import CalibrationFileError, Mount
from calibration.detection import BoardDetector, BoardNotFoundError
from calibration.procedure import CapturedView
from robot_learning.charuco_board import CharucoBoardSpec

INDEX_FILE = "capture.yaml"


@dataclass
class CaptureDir:
    """Writes and reads one capture folder."""

    path: Path
    board: CharucoBoardSpec
    cameras: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> mount, serial
    poses: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def create(
        cls, path: str | Path, board: CharucoBoardSpec, cameras: dict[str, tuple[Mount, str]]
    ) -> CaptureDir:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        capture = cls(path, board, {n: {"mount": m, "serial": s} for n, (m, s) in cameras.items()})
        capture.write_index()
        return capture

    def add(
        self, index: int, images: dict[str, np.ndarray], T_base_hand: np.ndarray | None
    ) -> None:
        for name, image in images.items():
            folder = self.path / name
            folder.mkdir(exist_ok=True)
            cv2.imwrite(str(folder / f"{index:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if T_base_hand is not None:
            self.poses[index] = np.asarray(T_base_hand, dtype=np.float64)

    def write_index(self) -> None:
        data: dict[str, Any] = {
            "board": self.board.to_dict(),
            "cameras": self.cameras,
            "poses": {int(i): T.tolist() for i, T in sorted(self.poses.items())},
        }
        (self.path / INDEX_FILE).write_text(yaml.safe_dump(data, sort_keys=False))

    @classmethod
    def open(cls, path: str | Path) -> CaptureDir:
        path = Path(path)
        index = path / INDEX_FILE
        if not index.is_file():
            raise FileNotFoundError(
                f"{index} not found: not a capture folder (`rl calibrate ... --sim "
                "--save-capture DIR` writes one)"
            )
        data = yaml.safe_load(index.read_text()) or {}
        try:
            board = CharucoBoardSpec.from_dict(data["board"], where=f"{index}: board")
            cameras = {str(n): dict(c) for n, c in (data.get("cameras") or {}).items()}
            poses = {
                int(i): np.asarray(T, dtype=np.float64)
                for i, T in (data.get("poses") or {}).items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationFileError(f"{index}: malformed capture index ({exc})") from exc
        return cls(path, board, cameras, poses)

    def views(self, camera: str, *, board: CharucoBoardSpec | None = None) -> list[CapturedView]:
        """Detections of every image of ``camera`` (with the hand pose where one was logged);
        ``board`` overrides the board definition (to check one against the images)."""
        folder = self.path / camera
        if camera not in self.cameras or not folder.is_dir():
            raise CalibrationFileError(
                f"{self.path}: no camera {camera!r} in this capture (has {sorted(self.cameras)})"
            )
        detector = BoardDetector(board or self.board)
        views, misses = [], []
        images = sorted(folder.glob("*.png"))
        for image_path in tqdm(images, desc=f"detecting ({camera})", unit="image", leave=False):
            index = int(image_path.stem)
            image = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
            try:
                detection = detector.detect(image, where=str(image_path))
            except BoardNotFoundError as exc:
                misses.append(str(exc))
                continue
            pose = self.poses.get(index)
            views.append(CapturedView(index, pose if pose is not None else np.eye(4), detection))
        if not views and misses:
            raise BoardNotFoundError(
                f"camera {camera!r}: the board was found in none of {len(misses)} images; "
                f"first: {misses[0]}"
            )
        return views

    def has_poses(self) -> bool:
        return bool(self.poses)
