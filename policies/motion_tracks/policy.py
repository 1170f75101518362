"""MT-pi behind the policy contract: an observation in, a timed end-effector chunk out.

  1. the robot's current keypoints come from its state (forward kinematics of the TCP pose
     and the gripper width, ``track_geometry.gripper_keypoints``), projected into each view
     through the station's camera calibration;
  2. the network predicts, per view, the points' future tracks, grasp and terminal;
  3. ``track_geometry.tracks_to_chunk`` triangulates them, fits the rigid motion and
     composes it with the current pose: the same ``ActionChunk`` ACT and Diffusion return.

Calibration: the station provides it (``use_cameras``: the calibration file of a real cell,
the simulated cameras in ``rl eval``), checked against the calibration the checkpoint was
trained with (``features.json``); a camera that moved or changed beyond the config's
tolerances is refused, naming it and by how much, because the model learned tracks as seen
from the training viewpoints. Without a station calibration, the checkpoint's own is used
(a fixed cell that has not been recalibrated since), and the policy says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from policies import checkpoint as ckpt
from policies.motion_tracks.config import MotionTrackConfig
from policies.motion_tracks.data import TrackFeatures
from policies.motion_tracks.network import TrackNetwork
from policies.normalization import NormalizationStats
from policies.policy import Policy
from robot_learning.geometry import rotation_angle_rad
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH, camera_name
from robot_learning.runtime import ActionChunk, ExecutionConfig, Observation
from robot_learning.track_geometry import CameraView, TrackGeometryError, gripper_keypoints
from robot_learning.track_geometry import tracks_to_chunk as chunk_from_tracks

log = logging.getLogger(__name__)

CameraSource = Callable[[], Mapping[str, CameraView]]


def check_station_views(
    trained: Mapping[str, CameraView], station: Mapping[str, CameraView], config: MotionTrackConfig
) -> None:
    """Raise ``TrackGeometryError`` naming every view the station lacks or that differs from
    the training calibration beyond the config's tolerances."""
    problems = []
    for key, view in trained.items():
        name = camera_name(key)
        there = station.get(name)
        if there is None:
            problems.append(
                f"view {name!r} is not calibrated at the station (has {sorted(station)})"
            )
            continue
        a, b = view.intrinsics, there.intrinsics
        if (a.width, a.height) != (b.width, b.height):
            problems.append(
                f"view {name!r} is {b.width}x{b.height}, trained at {a.width}x{a.height}"
            )
        elif abs(a.fx - b.fx) > 0.02 * a.fx or abs(a.fy - b.fy) > 0.02 * a.fy:
            problems.append(
                f"view {name!r} has focal length {b.fx:.1f} px, trained at {a.fx:.1f} px"
            )
        shift = float(np.linalg.norm(view.T_base_camera[:3, 3] - there.T_base_camera[:3, 3]))
        turn = np.degrees(
            rotation_angle_rad(view.T_base_camera[:3, :3], there.T_base_camera[:3, :3])
        )
        if shift > config.max_camera_shift_m or turn > config.max_camera_turn_deg:
            problems.append(
                f"view {name!r} is {100 * shift:.1f} cm and {turn:.1f} deg from where "
                f"it was in training (tolerance {100 * config.max_camera_shift_m:.0f} "
                f"cm, {config.max_camera_turn_deg:.0f} deg)"
            )
    if problems:
        raise TrackGeometryError(
            "the station's cameras do not match the MT-pi checkpoint: "
            + "; ".join(problems)
            + ". Put the cameras back, or retrain "
            "on data from the new viewpoints"
        )


class MotionTrackPolicy(Policy):
    """A trained MT-pi checkpoint behind the policy contract."""

    def __init__(
        self,
        network: TrackNetwork,
        *,
        device: str | torch.device = "cpu",
        checkpoint: Path | None = None,
    ) -> None:
        self.network = network.to(device).eval()
        self.device = torch.device(device)
        self.config: MotionTrackConfig = network.config
        self.features: TrackFeatures = network.features
        self.checkpoint = checkpoint
        self._trained_views = self.features.views()
        self._cameras: CameraSource | None = None
        self._warned = False
        self.last_terminal: float = 0.0  # the views' mean terminal flag of the last chunk
        self.rejected_chunks = 0  # predictions that gave no trustworthy motion (held still)
        self._last_gripper: float | None = None

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device = "cpu") -> MotionTrackPolicy:
        path = ckpt.resolve(path)
        ckpt.verify(path)
        try:
            config = MotionTrackConfig.from_json(ckpt.read_json(path, "config.json"))
            features = TrackFeatures.from_json(ckpt.read_json(path, "features.json"))
            if len(features.calibration) != len(features.cameras):
                raise ValueError("features.json carries no calibration for every view")
        except (ValueError, TypeError, KeyError) as exc:
            raise ckpt.CheckpointError(f"{path}: not a usable MT-pi checkpoint ({exc})") from None
        stats = NormalizationStats.from_json(ckpt.read_json(path, "normalization.json"))
        network = TrackNetwork(config, features, stats)
        missing, unexpected = network.load_state_dict(
            ckpt.read_tensors(path, ckpt.WEIGHTS), strict=False
        )
        if missing or unexpected:
            raise ckpt.CheckpointError(
                f"{path / ckpt.WEIGHTS}: weights do not fit the mtpi "
                f"network (missing {missing[:5]}, unexpected "
                f"{unexpected[:5]})"
            )
        return cls(network, device=device, checkpoint=path)

    # -- the contract ------------------------------------------------------------------------
    def execution(self) -> ExecutionConfig:
        return ExecutionConfig(
            execute_steps=self.config.execute_steps(self.features.rate_hz), temporal_ensemble_k=None
        )

    def use_cameras(self, source: CameraSource | Mapping[str, CameraView]) -> None:
        """The station's calibrated cameras by name, or a callable giving them now."""
        self._cameras = source if callable(source) else (lambda views=dict(source): views)

    def reset(self) -> None:
        self.last_terminal = 0.0
        self._last_gripper = None

    def act(self, observation: Observation) -> ActionChunk:
        views = self._views()
        frames, current_px = [], []
        pose = np.asarray(observation[EE_POSE], dtype=np.float64)
        if pose.shape != (7,) or not np.all(np.isfinite(pose)):
            raise ValueError(f"observation {EE_POSE!r} must be 7 finite values, got {pose}")
        width = float(observation[GRIPPER_WIDTH])
        points = gripper_keypoints(pose, width)
        for key, shape in zip(self.features.cameras, self.features.image_shapes, strict=True):
            if key not in observation.values:
                raise ValueError(
                    f"observation has no view {key!r}: MT-pi needs every view it "
                    f"was trained on ({list(self.features.cameras)}) to triangulate"
                )
            image = observation[key]
            if tuple(image.shape) != tuple(shape) or image.dtype != np.uint8:
                raise ValueError(
                    f"observation {key!r} is {image.dtype} {tuple(image.shape)}; "
                    f"the policy was trained on uint8 {tuple(shape)}"
                )
            frames.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
            pixels = views[key].project(points)
            if not np.isfinite(pixels).all():
                raise TrackGeometryError(f"the gripper is behind camera {key!r}")
            current_px.append(torch.from_numpy(pixels))
        tracks, grasp, terminal = self.network.predict_tracks(
            torch.stack(frames), torch.stack(current_px)
        )
        self.last_terminal = float(terminal[:, 0].mean())
        try:
            chunk, _ = chunk_from_tracks(
                {key: tracks[i].numpy() for i, key in enumerate(self.features.cameras)},
                grasp.mean(0).numpy(),
                views,
                ee_pose=pose,
                gripper_width_m=width,
                time_s=observation.time_s,
                period_s=self.features.period_s,
                max_reprojection_px=self.config.max_reprojection_px,
                rotation_smoothing_degree=self.config.rotation_smoothing_degree,
                rotation_fit=self.config.rotation_fit,
            )
        except TrackGeometryError as exc:
            # Predicted tracks that give no trustworthy motion: hold still (what the runtime's
            # watchdog does when a policy stalls), say why, and count it.
            self.rejected_chunks += 1
            log.warning("MT-pi at t=%.2f s: holding position: %s", observation.time_s, exc)
            return self._hold(observation.time_s, pose, observation)
        self._last_gripper = float(chunk.gripper[0])
        return chunk

    def _hold(self, time_s: float, pose: np.ndarray, observation: Observation) -> ActionChunk:
        """The current pose for the whole horizon, the gripper as commanded last."""
        steps = self.config.horizon_steps(self.features.rate_hz)
        width = float(observation[GRIPPER_WIDTH])
        closed = self._last_gripper if self._last_gripper is not None else float(width < 0.07)
        return ActionChunk(
            times_s=time_s + np.arange(steps) * self.features.period_s,
            positions=np.repeat(pose[None, :3], steps, axis=0),
            quaternions=np.repeat(pose[None, 3:7], steps, axis=0),
            gripper=np.full(steps, closed),
        )

    # -- helpers -----------------------------------------------------------------------------
    def _views(self) -> dict[str, CameraView]:
        """Calibrated views by camera key: the station's (checked), else the checkpoint's."""
        if self._cameras is None:
            if not self._warned:
                log.warning(
                    "MT-pi: no station calibration given; using the one the checkpoint "
                    "was trained with (%s)",
                    ", ".join(self._trained_views),
                )
                self._warned = True
            return self._trained_views
        station = dict(self._cameras())
        check_station_views(self._trained_views, station, self.config)
        return {key: station[camera_name(key)] for key in self._trained_views}
