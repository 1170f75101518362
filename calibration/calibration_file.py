"""One calibration file per workcell (YAML, versioned): every camera's intrinsics and pose,
with the residuals that say how far to trust them; exported as ROS CameraInfo and static
transforms.

A fixed camera is described by ``T_base_camera``, a camera on the hand by ``T_hand_camera``
(hand = the TCP frame the robot reports; its base pose at any instant is
``T_base_hand @ T_hand_camera``). Cameras are known by name and serial, so a file written
for other cameras is refused with the difference spelled out.

Files live in ``$RL_CALIBRATION_DIR`` (default ``~/.robot_learning/calibration``) as
``<workcell>.yaml``, where every command looks for them. Saving updates the file: the cameras
of this calibration replace theirs, the other cameras already in the file are kept with their
own ``calibrated`` date (so calibrating the wrist after the front keeps the front), and
camera-to-camera results of a recalibrated camera are dropped. ``created`` is the date of the
last update; a camera without ``calibrated`` (older files) dates from ``created``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from robot_learning.errors import InputError
from robot_learning.geometry import invert_transform, pose_from_transform
from robot_learning.hardware.camera import CameraIntrinsics, checked_T_base_camera

FORMAT = "robot_learning.calibration"
VERSION = 1
BASE_FRAME = "base"
HAND_FRAME = "hand_tcp"
DEFAULT_DIR = "~/.robot_learning/calibration"
log = logging.getLogger(__name__)
MAX_AGE_DAYS = 30.0  # older than this and the recorder warns that it is stale

Mount = Literal["fixed", "hand"]


class CalibrationFileError(InputError):
    """A calibration file that is malformed, for other cameras, or failed its checks."""


def calibration_path(workcell: str) -> Path:
    """Where the calibration of ``workcell`` is kept."""
    return Path(os.environ.get("RL_CALIBRATION_DIR", DEFAULT_DIR)).expanduser() / f"{workcell}.yaml"


@dataclass
class CameraCalibration:
    """One camera: intrinsics, mount, pose, and the residual report of each step."""

    name: str
    serial: str
    mount: Mount
    intrinsics: CameraIntrinsics
    pose: np.ndarray  # T_base_camera (fixed) or T_hand_camera (hand)
    residuals: dict[str, Any] = field(default_factory=dict)
    holdout_passed: bool = True
    calibrated: str | None = None  # ISO date of its calibration; None: the file's ``created``

    def __post_init__(self) -> None:
        if self.mount not in ("fixed", "hand"):
            raise CalibrationFileError(f"camera {self.name!r}: mount must be fixed or hand")
        self.pose = np.array(checked_T_base_camera(self.pose, self.name))

    @property
    def optical_frame(self) -> str:
        return f"{self.name}_color_optical_frame"

    def T_base_camera(self, T_base_hand: np.ndarray | None = None) -> np.ndarray:
        """The camera's base pose; a hand camera needs the hand pose of the same instant."""
        if self.mount == "fixed":
            return self.pose.copy()
        if T_base_hand is None:
            raise ValueError(f"camera {self.name!r} is on the hand: pass T_base_hand")
        return np.asarray(T_base_hand) @ self.pose

    def to_dict(self) -> dict[str, Any]:
        i = self.intrinsics
        key = "T_base_camera" if self.mount == "fixed" else "T_hand_camera"
        return {
            "serial": self.serial,
            "mount": self.mount,
            "image_size": [i.height, i.width],
            "intrinsics": {
                **{k: float(getattr(i, k)) for k in ("fx", "fy", "cx", "cy")},
                "distortion": [float(d) for d in i.distortion],
            },
            key: self.pose.tolist(),
            "holdout_passed": self.holdout_passed,
            "residuals": _plain(self.residuals),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any], where: str) -> CameraCalibration:
        try:
            mount = data["mount"]
            key = "T_base_camera" if mount == "fixed" else "T_hand_camera"
            height, width = data["image_size"]
            k = data["intrinsics"]
            intrinsics = CameraIntrinsics(
                width=int(width), height=int(height), fx=float(k["fx"]), fy=float(k["fy"]),
                cx=float(k["cx"]), cy=float(k["cy"]),
                distortion=tuple(float(d) for d in k["distortion"]),
            )  # fmt: skip
            return cls(
                name=name,
                serial=str(data["serial"]),
                mount=mount,
                intrinsics=intrinsics,
                pose=np.asarray(data[key], dtype=np.float64),
                residuals=dict(data.get("residuals", {})),
                holdout_passed=bool(data.get("holdout_passed", True)),
                calibrated=None if data.get("calibrated") is None else str(data["calibrated"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationFileError(f"{where}: camera {name!r}: malformed ({exc})") from exc

    def camera_info(self) -> dict[str, Any]:
        """ROS ``sensor_msgs/CameraInfo`` fields (as camera_info_manager's YAML)."""
        i = self.intrinsics
        K = i.matrix
        P = np.hstack([K, np.zeros((3, 1))])
        return {
            "header": {"frame_id": self.optical_frame},
            "height": i.height,
            "width": i.width,
            "distortion_model": "plumb_bob",
            "d": [float(v) for v in i.distortion],
            "k": K.ravel().tolist(),
            "r": np.eye(3).ravel().tolist(),
            "p": P.ravel().tolist(),
        }


@dataclass
class WorkcellCalibration:
    """Everything calibrated about one workcell's cameras."""

    workcell: str
    cameras: dict[str, CameraCalibration]
    board: dict[str, Any] = field(default_factory=dict)
    camera_pairs: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    version: int = VERSION

    # -- identity -------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Short hash of the file's content: which calibration an episode was recorded with."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def age_days(self, now: dt.datetime | None = None) -> float:
        """Days since the file was last updated (see ``camera_age_days`` per camera)."""
        return _days_since(self.created, now)

    def calibrated(self, name: str) -> str:
        """ISO date when camera ``name`` was calibrated."""
        return self.cameras[name].calibrated or self.created

    def camera_age_days(self, name: str, now: dt.datetime | None = None) -> float:
        return _days_since(self.calibrated(name), now)

    def check_cameras(self, serials: Mapping[str, str], *, where: str = "calibration") -> None:
        """Raise unless every camera in ``serials`` (name -> serial) is in the file with that
        serial; names the missing and mismatched ones and what to do."""
        missing = [n for n in serials if n not in self.cameras]
        mismatched = {
            n: (self.cameras[n].serial, s)
            for n, s in serials.items()
            if n in self.cameras and s and self.cameras[n].serial != s
        }
        if missing or mismatched:
            parts = []
            if missing:
                parts.append(f"no calibration for camera(s) {missing} (has {sorted(self.cameras)})")
            for n, (file_serial, live) in mismatched.items():
                parts.append(f"camera {n!r} was calibrated as serial {file_serial}, is now {live}")
            raise CalibrationFileError(
                f"{where} is for other cameras: {'; '.join(parts)}. Run `rl calibrate` for "
                "this workcell's cameras"
            )

    def recording_problems(
        self, serials: Mapping[str, str], *, max_age_days: float = MAX_AGE_DAYS
    ) -> list[str]:
        """Why recording with this file for cameras ``serials`` (name -> serial) is doubtful:
        a camera missing or with another serial, a failed check, or a stale file."""
        problems = []
        for name, serial in serials.items():
            cam = self.cameras.get(name)
            if cam is None:
                problems.append(f"camera {name!r} is not calibrated in {self.workcell!r}")
                continue
            if serial and cam.serial != serial:
                problems.append(
                    f"camera {name!r} was calibrated as serial {cam.serial}, is {serial}"
                )
            elif not cam.holdout_passed:
                problems.append(f"camera {name!r} failed its held-out-view check")
            age = self.camera_age_days(name)
            if age > max_age_days:
                problems.append(
                    f"calibration of camera {name!r} in {self.workcell!r} is "
                    f"{age:.0f} days old; recalibrate"
                )
        return problems

    def recorder_inputs(self) -> dict[str, Any]:
        """Keyword arguments for data_collection.recorder.camera_calibration (minus the live
        base poses of hand cameras, which the caller takes from the robot at the start)."""
        return {
            "intrinsics": {n: c.intrinsics for n, c in self.cameras.items()},
            "extrinsics": {n: c.pose for n, c in self.cameras.items() if c.mount == "fixed"},
            "hand_cameras": {n: c.pose for n, c in self.cameras.items() if c.mount == "hand"},
        }

    # -- exports --------------------------------------------------------------------------------
    def static_transforms(self) -> list[dict[str, Any]]:
        """One ROS ``geometry_msgs/TransformStamped``-like dict per camera (parent -> child)."""
        out = []
        for cam in self.cameras.values():
            parent = BASE_FRAME if cam.mount == "fixed" else HAND_FRAME
            position, quaternion = pose_from_transform(cam.pose)
            out.append({
                "header": {"frame_id": parent},
                "child_frame_id": cam.optical_frame,
                "transform": {
                    "translation": dict(zip("xyz", position.tolist(), strict=True)),
                    "rotation": dict(zip("xyzw", quaternion.tolist(), strict=True)),
                },
            })  # fmt: skip
        return out

    def episode_metadata(self, path: str | Path | None = None) -> dict[str, Any]:
        """What an episode stores about the calibration it used (see the recorder)."""
        return {
            "workcell": self.workcell,
            "created": self.created,
            "version": self.version,
            "fingerprint": self.fingerprint(),
            "path": None if path is None else str(path),
        }

    # -- files ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "workcell": self.workcell,
            "created": self.created,
            "board": _plain(self.board),
            "cameras": {
                name: {**cam.to_dict(), "calibrated": self.calibrated(name)}
                for name, cam in self.cameras.items()
            },
            "camera_pairs": _plain(self.camera_pairs),
        }

    def save(self, path: str | Path | None = None, *, force: bool = False) -> Path:
        """Write the YAML, updating an existing file: its other cameras are kept (see the
        module docstring). Refused when a camera failed its held-out-view check, unless
        ``force``, and when the existing file cannot be read (nothing is overwritten)."""
        failed = [n for n, c in self.cameras.items() if not c.holdout_passed]
        if failed and not force:
            raise CalibrationFileError(
                f"not saved: camera(s) {failed} failed the held-out-view check (see their "
                "residuals); recapture with more varied poses, or save anyway with --force"
            )
        path = Path(path) if path is not None else calibration_path(self.workcell)
        updated = self
        if path.exists():
            try:
                updated = self.over(WorkcellCalibration.load(path))
            except (CalibrationFileError, yaml.YAMLError) as exc:
                raise CalibrationFileError(
                    f"not saved: {path} exists but cannot be updated ({exc}); move it away "
                    "(its cameras are then lost) or save to another file"
                ) from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(yaml.safe_dump(updated.to_dict(), sort_keys=False))
        tmp.replace(path)
        kept = sorted(set(updated.cameras) - set(self.cameras))
        log.info(
            "calibration of %s saved to %s%s",
            sorted(self.cameras),
            path,
            f"; kept from the file: {kept}" if kept else "",
        )
        return path

    def over(self, older: WorkcellCalibration) -> WorkcellCalibration:
        """This calibration laid over ``older``: its cameras replace theirs, the others are
        kept with their dates, pairs that involve a recalibrated camera are dropped."""
        kept = {
            n: replace(c, calibrated=older.calibrated(n))
            for n, c in older.cameras.items()
            if n not in self.cameras
        }
        pairs = {
            k: v for k, v in older.camera_pairs.items() if not set(k.split("-")) & set(self.cameras)
        }
        return WorkcellCalibration(
            workcell=self.workcell,
            cameras={
                **kept,
                **{n: replace(c, calibrated=self.calibrated(n)) for n, c in self.cameras.items()},
            },
            board={**older.board, **self.board},
            camera_pairs={**pairs, **self.camera_pairs},
            created=self.created,
        )

    @classmethod
    def load(cls, path: str | Path) -> WorkcellCalibration:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"calibration file not found: {path}; run `rl calibrate` first")
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CalibrationFileError(f"{path}: not a {FORMAT} file")
        if data.get("version") != VERSION:
            raise CalibrationFileError(
                f"{path}: version {data.get('version')}, this code reads version {VERSION}"
            )
        cameras = data.get("cameras") or {}
        return cls(
            workcell=str(data.get("workcell", path.stem)),
            cameras={n: CameraCalibration.from_dict(n, c, str(path)) for n, c in cameras.items()},
            board=dict(data.get("board") or {}),
            camera_pairs=dict(data.get("camera_pairs") or {}),
            created=str(data["created"]),
            version=VERSION,
        )


def _days_since(iso: str, now: dt.datetime | None = None) -> float:
    elapsed = (now or dt.datetime.now(dt.UTC)) - dt.datetime.fromisoformat(iso)
    return elapsed.total_seconds() / 86400.0


def relative_pose(a: CameraCalibration, b: CameraCalibration) -> np.ndarray:
    """T_a_b of two fixed cameras."""
    return invert_transform(a.pose) @ b.pose


def _plain(value: Any) -> Any:
    """Numpy values to plain Python, so YAML stays readable and safe to load."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
