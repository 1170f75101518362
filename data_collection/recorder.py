"""The episode recorder: robot, cameras and teleop streams, time-aligned into the store.

Two streams per episode (glossary in robot_learning.store.schema):
  ``step``  at the record rate (the policy rate, 10 Hz in sim): the latest frame of every
            camera with its capture time, robot state, the commanded action, the teleop twist;
  ``state`` at the control rate (100 Hz): robot state and the target actually sent.
Aligning a step means taking, for each camera, the newest frame captured at or before the
step time; its own capture timestamp is stored beside it so consumers can see the skew.

Key names live in robot_learning.keys (shared with the runtime and the policies).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_learning.hardware.camera import CameraFrame, CameraIntrinsics

if TYPE_CHECKING:
    from calibration.calibration_file import WorkcellCalibration
from robot_learning.hardware.robot import CartesianTarget, RobotState
from robot_learning.keys import (
    ACTION,
    BASE_FRAME,
    CONTROL_SOURCE,
    EE_POSE,
    GRIPPER_WIDTH,
    HUMAN_ACTION,
    JOINT_POSITIONS,
    JOINT_VELOCITIES,
    POLICY_ACTION,
    STATE_EE_POSE,
    STATE_GRIPPER_WIDTH,
    STATE_JOINT_POSITIONS,
    STATE_STREAM,
    STATE_TARGET,
    STATE_TIMESTAMP,
    TELEOP_TWIST,
    TIMESTAMP,
    TRACK_GRASP,
    TRACK_POINTS,
    TRACK_POINTS_3D,
    TRACK_TERMINAL,
    camera_key,
    camera_timestamp_key,
    depth_key,
    track_key,
    track_state_key,
)
from robot_learning.store import Codec, KeySpec, Source, StoreSchema, StoreWriter

logger = logging.getLogger(__name__)


def camera_key_specs(
    cameras: Mapping[str, CameraIntrinsics], *, depth: bool, jpeg_quality: int = 90
) -> dict[str, KeySpec]:
    """Per camera: color (JPEG), its capture time and optionally depth (lossless, mm); the
    camera part of every recording schema, robot station and human capture alike."""
    keys: dict[str, KeySpec] = {}
    for name, intr in cameras.items():
        shape = (intr.height, intr.width)
        keys[camera_key(name)] = KeySpec(
            (*shape, 3),
            "uint8",
            Codec.JPEG,
            quality=jpeg_quality,
            frame=f"{name}_color_optical_frame",
        )
        keys[camera_timestamp_key(name)] = KeySpec(
            (), "float64", units="s, station clock", description=f"capture time of {name}"
        )
        if depth:
            keys[depth_key(name)] = KeySpec(
                shape, "uint16", Codec.DEPTH, units="mm", frame=f"{name}_color_optical_frame"
            )
    return keys


def recording_schema(
    cameras: Mapping[str, CameraIntrinsics],
    *,
    depth: bool = False,
    record_hz: float,
    control_hz: float,
    jpeg_quality: int = 90,
    intervention: bool = False,
) -> StoreSchema:
    """The keys a robot station records, derived from its cameras (never from constants).

    ``intervention`` adds, per step, who was in control and both the policy's and the
    operator's action (deployment with a human in the loop).
    """
    keys: dict[str, KeySpec] = {
        TIMESTAMP: KeySpec((), "float64", units="s, station clock", description="time of the step"),
        JOINT_POSITIONS: KeySpec((7,), "float64", units="rad"),
        JOINT_VELOCITIES: KeySpec((7,), "float64", units="rad/s"),
        EE_POSE: KeySpec(
            (7,),
            "float64",
            units="m, quaternion xyzw",
            frame=BASE_FRAME,
            description="hand TCP pose",
        ),
        GRIPPER_WIDTH: KeySpec((), "float64", units="m"),
        ACTION: KeySpec(
            (8,),
            "float64",
            units="m, quaternion xyzw, 1=closed",
            frame=BASE_FRAME,
            description="commanded TCP target pose and gripper",
        ),
        TELEOP_TWIST: KeySpec((6,), "float64", units="m/s, rad/s", frame=BASE_FRAME),
        STATE_TIMESTAMP: KeySpec((), "float64", stream=STATE_STREAM, units="s, station clock"),
        STATE_JOINT_POSITIONS: KeySpec((7,), "float64", stream=STATE_STREAM, units="rad"),
        STATE_EE_POSE: KeySpec(
            (7,), "float64", stream=STATE_STREAM, units="m, quaternion xyzw", frame=BASE_FRAME
        ),
        STATE_GRIPPER_WIDTH: KeySpec((), "float64", stream=STATE_STREAM, units="m"),
        STATE_TARGET: KeySpec(
            (8,),
            "float64",
            stream=STATE_STREAM,
            units="m, quaternion xyzw, 1=closed",
            frame=BASE_FRAME,
        ),
    }
    if intervention:
        pose_units = "m, quaternion xyzw, 1=closed"
        keys[CONTROL_SOURCE] = KeySpec((), "uint8", description="0 policy, 1 human, 2 hold")
        keys[POLICY_ACTION] = KeySpec(
            (8,),
            "float64",
            units=pose_units,
            frame=BASE_FRAME,
            description="the policy's target, in control or not",
        )
        keys[HUMAN_ACTION] = KeySpec(
            (8,),
            "float64",
            units=pose_units,
            frame=BASE_FRAME,
            description="the operator device's target",
        )
    keys.update(camera_key_specs(cameras, depth=depth, jpeg_quality=jpeg_quality))
    return StoreSchema(keys=keys, stream_rates_hz={"step": record_hz, STATE_STREAM: control_hz})


def track_key_specs(cameras: Sequence[str]) -> dict[str, KeySpec]:
    """The motion-track keys (robot_learning.keys, MT-pi) for views ``cameras``; a store
    gains them when a writer opens it with a schema that adds them."""
    keys: dict[str, KeySpec] = {
        TRACK_POINTS_3D: KeySpec(
            (len(TRACK_POINTS), 3),
            "float32",
            units="m",
            frame=BASE_FRAME,
            description=f"track points {TRACK_POINTS} in the base frame",
        ),
        TRACK_GRASP: KeySpec((), "float32", description="1 grasping, 0 not"),
        TRACK_TERMINAL: KeySpec((), "uint8", description="1 on the episode's final steps"),
    }
    for name in cameras:
        keys[track_key(name)] = KeySpec(
            (len(TRACK_POINTS), 2),
            "float32",
            units="px",
            frame=f"{name}_color_optical_frame",
            description=f"track points {TRACK_POINTS} in {name}",
        )
        keys[track_state_key(name)] = KeySpec(
            (len(TRACK_POINTS),), "uint8", description="hand_tracking.base.PointState"
        )
    return keys


def camera_calibration(
    intrinsics: Mapping[str, CameraIntrinsics],
    extrinsics: Mapping[str, np.ndarray | None],
    *,
    hand_cameras: Mapping[str, np.ndarray] | None = None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The calibration an episode was recorded with, as stored in its metadata.

    ``extrinsics``: T_base_camera per camera (for a camera on the hand, its pose at the
    episode's start). ``hand_cameras``: T_hand_camera of cameras on the hand, whose pose at
    each step is ``T_base_hand @ T_hand_camera`` (``EpisodeInfo.camera_poses``). ``source``
    says which calibration this is (file, fingerprint, date), so an episode can be traced to it.
    """
    hand_cameras = hand_cameras or {}
    out = {}
    for name, intr in intrinsics.items():
        t = extrinsics.get(name)
        hand = hand_cameras.get(name)
        if t is None and hand is None:
            logger.warning("camera %r has no calibrated pose: recorded uncalibrated", name)
        out[name] = {
            "width": intr.width,
            "height": intr.height,
            "fx": intr.fx,
            "fy": intr.fy,
            "cx": intr.cx,
            "cy": intr.cy,
            "distortion": list(intr.distortion),
            "T_base_camera": None if t is None else np.asarray(t).tolist(),
            "mount": "hand" if hand is not None else "fixed",
            "T_hand_camera": None if hand is None else np.asarray(hand).tolist(),
            "source": None if source is None else dict(source),
        }
    return out


def load_recording_calibration(
    cameras: Iterable[str],
    *,
    serials: Mapping[str, str] | None = None,
    path: str | Path | None = None,
    workcell: str = "lab",
    fixed_only: bool = False,
) -> tuple[WorkcellCalibration, Path]:
    """The workcell's calibration file (``path``, default ``$RL_CALIBRATION_DIR/<workcell>
    .yaml``) checked for recording ``cameras``: ValueError naming every problem (a camera
    missing or with another serial, a failed check, a stale calibration; with
    ``fixed_only`` a camera on the hand). One check for robot and human-video recording."""
    from calibration.calibration_file import WorkcellCalibration, calibration_path

    cameras = list(cameras)
    path = Path(path) if path else calibration_path(workcell)
    cal = WorkcellCalibration.load(path)
    problems = cal.recording_problems(serials or dict.fromkeys(cameras, ""))
    hand = [n for n in cameras if n in cal.cameras and cal.cameras[n].mount == "hand"]
    if fixed_only and hand:
        problems.append(
            f"camera(s) {hand} are on the robot's hand; human capture needs fixed cameras"
        )
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)}")
    return cal, path


def recorded_calibration(
    cal: WorkcellCalibration,
    path: str | Path,
    cameras: Iterable[str],
    *,
    T_base_hand: np.ndarray | None = None,
) -> dict[str, Any]:
    """``camera_calibration`` from a checked file for ``cameras``: the file's intrinsics, a
    fixed camera's T_base_camera, a hand camera's T_hand_camera (and its base pose at
    ``T_base_hand``, the hand at the episode's start)."""
    fixed = {n: cal.cameras[n].pose for n in cameras if cal.cameras[n].mount == "fixed"}
    hand = {n: cal.cameras[n].pose for n in cameras if cal.cameras[n].mount == "hand"}
    if hand and T_base_hand is None:
        raise ValueError(
            f"camera(s) {sorted(hand)} are on the hand: their pose needs the "
            "hand pose at the episode's start"
        )
    at_start = {n: np.asarray(T_base_hand) @ T for n, T in hand.items()}
    recorded = camera_calibration(
        {n: cal.cameras[n].intrinsics for n in cameras},
        {**fixed, **at_start},
        hand_cameras=hand,
        source=cal.episode_metadata(path),
    )
    for name in cameras:
        recorded[name]["serial"] = cal.cameras[name].serial
    return recorded


def calibration_mismatch(
    recorded: Mapping[str, Mapping[str, Any]],
    intrinsics: Mapping[str, CameraIntrinsics | None],
    serials: Mapping[str, str | None],
) -> str | None:
    """Why a calibration (``recorded_calibration`` entries) does not fit the live cameras:
    one made at another image size than a camera delivers, or for another camera than the
    serial it reports (front and wrist swapped, a camera replaced). A camera that reports
    no serial (simulated, OpenCV) is checked for its size only."""
    for name, cal in recorded.items():
        intr = intrinsics.get(name)
        if intr is not None and (intr.width, intr.height) != (cal["width"], cal["height"]):
            return (
                f"camera {name} delivers {intr.width}x{intr.height} but was calibrated "
                f"at {cal['width']}x{cal['height']} (calibrate at this size)"
            )
    wrong = [
        f"camera {name} is serial {serials[name]} but the calibration is for {cal['serial']}"
        for name, cal in recorded.items()
        if serials.get(name) and cal.get("serial") and serials[name] != cal["serial"]
    ]
    if wrong:
        return "; ".join(wrong) + " (plug the cameras as calibrated, or calibrate again)"
    return None


@dataclass
class EpisodeRecorder:
    """Feeds one episode's samples to a StoreWriter under the recording schema's keys."""

    writer: StoreWriter
    cameras: tuple[str, ...]
    depth: bool = False

    def begin(
        self,
        *,
        source: Source | str,
        task: str,
        operator: str,
        calibration: Mapping[str, Any],
        notes: Mapping[str, Any] | None = None,
    ) -> int:
        return self.writer.begin_episode(
            source=source, task=task, operator=operator, calibration=calibration, notes=notes
        )

    def record_control(self, state: RobotState, target: CartesianTarget) -> None:
        """One control-rate row: the state and the target sent at that tick."""
        self.writer.append(
            {
                STATE_TIMESTAMP: state.timestamp_s,
                STATE_JOINT_POSITIONS: state.joint_positions,
                STATE_EE_POSE: state.ee_pose_vector(),
                STATE_GRIPPER_WIDTH: state.gripper_width_m,
                STATE_TARGET: target.as_vector(),
            },
            stream=STATE_STREAM,
        )

    def record_step(
        self,
        *,
        time_s: float,
        state: RobotState,
        action: CartesianTarget,
        twist: np.ndarray,
        frames: Mapping[str, CameraFrame],
        control: Mapping[str, Any] | None = None,
    ) -> None:
        """One record-rate row: the newest frame of each camera at ``time_s`` and the rest.

        ``control`` carries the intervention keys (``CONTROL_SOURCE``, ``POLICY_ACTION``,
        ``HUMAN_ACTION``) when the schema has them."""
        missing = [c for c in self.cameras if c not in frames]
        if missing:
            raise ValueError(f"step at {time_s:.3f} s has no frame from camera(s) {missing}")
        row: dict[str, Any] = {
            TIMESTAMP: time_s,
            JOINT_POSITIONS: state.joint_positions,
            JOINT_VELOCITIES: state.joint_velocities,
            EE_POSE: state.ee_pose_vector(),
            GRIPPER_WIDTH: state.gripper_width_m,
            ACTION: action.as_vector(),
            TELEOP_TWIST: twist,
            **(control or {}),
        }
        for name in self.cameras:
            frame = frames[name]
            row[camera_key(name)] = frame.color
            row[camera_timestamp_key(name)] = frame.timestamp_s
            if self.depth:
                if frame.depth is None:
                    raise ValueError(f"camera {name!r} delivered no depth frame")
                row[depth_key(name)] = frame.depth
        self.writer.append(row)

    def commit(
        self,
        *,
        success: bool,
        notes: Mapping[str, Any] | None = None,
        source: Source | str | None = None,
    ) -> int:
        return self.writer.commit(success=success, notes=notes, source=source)

    def discard(self) -> None:
        if self.writer.in_episode:
            self.writer.discard()
