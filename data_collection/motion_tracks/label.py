"""``rl tracks label``: motion-track keys for the robot and human episodes of a store.

Per episode and camera view (glossary in robot_learning.keys):

- robot episodes (teleop, policy, intervention): the gripper's points from the recorded TCP
  pose and gripper width (``robot.py``), projected with the episode's calibration;
  ``track_state`` DETECTED inside the image, MISSING outside (value kept); grasp = the
  commanded gripper (closing or closed);
- human episodes (human_video): hand keypoints per view from the tracker named ("sim":
  simulator ground truth through the simulated tracker's error model; "mediapipe": the
  detector over the stored frames; "stored": the ``hand_keypoints_<cam>`` already in the
  episode, e.g. from ``rl human track``), then the hand's three points and the grasp
  heuristic (``human.py``); ``track_points_3d`` from the simulator's ground truth when the
  episode has it (real episodes: left to triangulation);
- terminal: 1 on the last ``terminal_s`` of successful episodes, else 0.

Everything is checked before anything is written: an episode missing a view, with an
uncalibrated camera, without images for a tracker that needs them, or without the ground
truth the sim tracker needs, stops the run with a message naming it. Human episodes whose
hand is lost for long stretches are labelled, flagged in the report and (unless told not
to) excluded from training through the store's curation, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_collection.hand_tracking.base import HandTrackSequence, PointState
from data_collection.hand_tracking.sim_tracker import (
    DEFAULT_MAX_GAP_S,
    TrackerErrorModel,
    simulate_tracking,
)
from data_collection.motion_tracks import human, robot
from data_collection.motion_tracks.cameras import EpisodeCamera, TrackInputError
from data_collection.recorder import track_key_specs
from robot_learning import keys
from robot_learning.store import Episode, KeySpec, Source, StoreReader, annotate_episodes
from robot_learning.store.curation import set_excluded

log = logging.getLogger(__name__)

BUILTIN_TRACKERS = ("sim", "stored")  # others: detectors registered by name (hand_tracking)
NUM_POINTS = len(keys.TRACK_POINTS)


@dataclass(frozen=True)
class LabelConfig:
    store: Path
    tracker: str = "sim"
    hand: str = "right"
    cameras: tuple[str, ...] | None = None  # None: every camera the episode recorded
    episodes: tuple[int, ...] | None = None  # None: every committed episode
    errors: TrackerErrorModel = field(default_factory=TrackerErrorModel)
    seed: int = 0
    overwrite: bool = False
    terminal_s: float = 0.5
    max_gap_s: float = DEFAULT_MAX_GAP_S
    max_missing_fraction: float = 0.2  # flag a human episode whose hand is lost more often
    max_missing_s: float = 1.0  # ... or for longer at a stretch, in any view
    exclude_flagged: bool = True

    def __post_init__(self) -> None:
        if self.tracker not in BUILTIN_TRACKERS:
            from data_collection.hand_tracking.registry import tracker_names

            if self.tracker not in tracker_names():
                raise ValueError(
                    f"tracker {self.tracker!r}: choose one of "
                    f"{', '.join((*BUILTIN_TRACKERS, *tracker_names()))}"
                )
        human.hand_index(self.hand)


@dataclass
class LabelReport:
    robot_episodes: list[int] = field(default_factory=list)
    human_episodes: list[int] = field(default_factory=list)
    flagged: dict[int, str] = field(default_factory=dict)  # episode -> why
    track_error_px: list[float] = field(default_factory=list)  # human, vs ground truth (sim)

    def lines(self) -> list[str]:
        out = [
            f"labelled {len(self.robot_episodes)} robot and {len(self.human_episodes)} "
            "human episodes"
        ]
        if self.track_error_px:
            errors = np.asarray(self.track_error_px)
            out.append(
                f"human track error vs ground truth: mean {errors.mean():.2f} px, "
                f"median {np.median(errors):.2f} px, 95% {np.quantile(errors, 0.95):.2f} px"
            )
        out += [f"episode {e} flagged: {why}" for e, why in sorted(self.flagged.items())]
        return out


def track_specs(cameras: list[str], *, hand_keys: bool) -> dict[str, KeySpec]:
    """The track keys (one definition: ``recorder.track_key_specs``), and the hand keys the
    trackers write when ``hand_keys``."""
    specs = track_key_specs(cameras)
    if hand_keys:
        for cam in cameras:
            specs[keys.hand_keypoints_key(cam)] = KeySpec(
                (len(keys.HANDS), 21, 2), "float32", units="px", frame=f"{cam}_color_optical_frame"
            )
            specs[keys.hand_state_key(cam)] = KeySpec((len(keys.HANDS),), "uint8")
    return specs


class Labeller:
    """Checks every selected episode, then labels them one by one (a generator for
    ``annotate_episodes``)."""

    def __init__(self, config: LabelConfig) -> None:
        self.config = config
        self.reader = StoreReader(config.store)
        chosen = config.episodes if config.episodes is not None else range(self.reader.num_episodes)
        self.episodes = [self.reader.episode(i) for i in chosen]
        if not self.episodes:
            raise TrackInputError(f"{config.store}: no committed episodes to label")
        self.cameras = {ep.index: self._cameras_of(ep) for ep in self.episodes}
        for ep in self.episodes:
            self._check(ep)
        self.report = LabelReport()
        self._tracker = None

    @staticmethod
    def is_human(ep: Episode) -> bool:
        return ep.info.source == Source.HUMAN_VIDEO

    def _cameras_of(self, ep: Episode) -> list[str]:
        recorded = sorted(
            keys.camera_name(k)
            for k in ep.info.keys
            if k.startswith(keys.CAMERA_PREFIX) and not k.endswith(keys.TIMESTAMP_SUFFIX)
        )
        where = f"{self.config.store}: episode {ep.index} ({ep.info.source})"
        if self.config.cameras is None:
            if not recorded:
                raise TrackInputError(
                    f"{where} records no camera images: nothing to track "
                    "(tracks are per camera view)"
                )
            lost = sorted(set(ep.info.calibration) - set(recorded))
            if lost:
                raise TrackInputError(
                    f"{where}: view(s) {lost} missing: calibrated for the episode but no "
                    f"images recorded (it has {recorded}); label the views it has with "
                    "--cameras, or leave the episode out (--episodes)"
                )
            return recorded
        missing = [c for c in self.config.cameras if c not in recorded]
        if missing:
            raise TrackInputError(
                f"{where}: view(s) {missing} missing (the episode records "
                f"{recorded or 'no cameras'}); label with --cameras among those, or leave "
                "the episode out (--episodes)"
            )
        return list(self.config.cameras)

    def _check(self, ep: Episode) -> None:
        where = f"{self.config.store}: episode {ep.index} ({ep.info.source})"
        needed = [keys.TIMESTAMP]
        if self.is_human(ep):
            if self.config.tracker == "sim":
                needed.append(keys.HAND_LANDMARKS_3D)
            elif self.config.tracker == "stored":
                needed += [
                    k
                    for c in self.cameras[ep.index]
                    for k in (keys.hand_keypoints_key(c), keys.hand_state_key(c))
                ]
        else:
            needed += [keys.EE_POSE, keys.GRIPPER_WIDTH, keys.ACTION]
        lacking = [k for k in needed if k not in ep.info.keys]
        if lacking:
            hint = {
                keys.HAND_LANDMARKS_3D: "the sim tracker needs simulator ground truth; "
                "use --tracker mediapipe for real videos",
            }.get(
                lacking[0],
                "run `rl human track` first"
                if "hand_" in lacking[0]
                else "was it recorded by this stack's recorder?",
            )
            raise TrackInputError(f"{where}: lacks {lacking} ({hint})")
        steps = ep.length
        for cam in self.cameras[ep.index]:  # calibration problems surface before writing
            EpisodeCamera.from_episode(
                ep.info, cam, ee_poses=np.tile([0, 0, 0, 0, 0, 0, 1.0], (1, 1)), steps=steps
            )

    def specs(self) -> dict[str, KeySpec]:
        human_cams = sorted(
            {c for ep in self.episodes if self.is_human(ep) for c in self.cameras[ep.index]}
        )
        robot_cams = sorted(
            {c for ep in self.episodes if not self.is_human(ep) for c in self.cameras[ep.index]}
        )
        specs = track_specs(robot_cams, hand_keys=False)
        specs.update(track_specs(human_cams, hand_keys=self.config.tracker != "stored"))
        return specs

    def rows(self, *, progress: bool = True) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        bar = tqdm(self.episodes, desc="label tracks", unit="episode", disable=not progress)
        for ep in bar:
            if self.is_human(ep):
                values = self._label_human(ep)
                self.report.human_episodes.append(ep.index)
            else:
                values = self._label_robot(ep)
                self.report.robot_episodes.append(ep.index)
            bar.set_postfix(flagged=len(self.report.flagged))
            yield ep.index, values

    # -- robot -------------------------------------------------------------------------------
    def _label_robot(self, ep: Episode) -> dict[str, np.ndarray]:
        data = self.reader.read_episode(
            ep.index, [keys.TIMESTAMP, keys.EE_POSE, keys.GRIPPER_WIDTH, keys.ACTION]
        )
        points = robot.gripper_points(data[keys.EE_POSE], data[keys.GRIPPER_WIDTH])
        values = {
            keys.TRACK_POINTS_3D: points.astype(np.float32),
            keys.TRACK_GRASP: robot.gripper_grasp(data[keys.ACTION]),
            keys.TRACK_TERMINAL: self._terminal(ep, data[keys.TIMESTAMP]),
        }
        for cam in self.cameras[ep.index]:
            camera = EpisodeCamera.from_episode(ep.info, cam, ee_poses=data[keys.EE_POSE])
            pixels, depth = camera.project(points)
            inside = camera.inside(pixels, depth)
            values[keys.track_key(cam)] = pixels.astype(np.float32)
            values[keys.track_state_key(cam)] = np.where(
                inside, PointState.DETECTED, PointState.MISSING
            ).astype(np.uint8)
        return values

    # -- human -------------------------------------------------------------------------------
    def _label_human(self, ep: Episode) -> dict[str, np.ndarray]:
        config = self.config
        timestamps = self.reader.read_episode(ep.index, [keys.TIMESTAMP])[keys.TIMESTAMP]
        truth = None
        if keys.HAND_LANDMARKS_3D in ep.info.keys:
            truth = self.reader.read_episode(ep.index, [keys.HAND_LANDMARKS_3D])[
                keys.HAND_LANDMARKS_3D
            ].astype(np.float64)
        values: dict[str, np.ndarray] = {}
        views: list[HandTrackSequence] = []
        flags = []
        h = human.hand_index(config.hand)
        for number, cam in enumerate(self.cameras[ep.index]):
            camera = EpisodeCamera.from_episode(ep.info, cam, steps=len(timestamps))
            seq = self._track_view(ep, cam, camera, timestamps, truth, number)
            views.append(seq)
            if config.tracker != "stored":
                values[keys.hand_keypoints_key(cam)] = seq.keypoints
                values[keys.hand_state_key(cam)] = seq.state
            points, state = human.hand_track(seq, config.hand)
            values[keys.track_key(cam)] = points
            values[keys.track_state_key(cam)] = state
            fraction, longest = human.missing_stretches(seq.state[:, h], timestamps)
            if fraction > config.max_missing_fraction or longest > config.max_missing_s:
                flags.append(
                    f"{config.hand} hand not found in view {cam!r} for "
                    f"{fraction:.0%} of steps (longest gap {longest:.1f} s)"
                )
            if truth is not None:
                true_pixels, _ = camera.project(truth[:, h][:, list(human.TRACK_LANDMARKS)])
                seen = state[:, 0] == PointState.DETECTED
                error = np.linalg.norm(points[seen] - true_pixels[seen], axis=-1)
                self.report.track_error_px += error.ravel().tolist()
        if truth is not None:
            hand_truth = truth[:, h]
            values[keys.TRACK_POINTS_3D] = hand_truth[:, list(human.TRACK_LANDMARKS)].astype(
                np.float32
            )
            ratio = human.pinch_ratio_3d(hand_truth)
        else:
            ratio = human.pinch_ratio_2d(views, config.hand)
        values[keys.TRACK_GRASP] = human.grasp_from_ratio(ratio)
        values[keys.TRACK_TERMINAL] = self._terminal(ep, timestamps)
        if flags:
            self.report.flagged[ep.index] = "; ".join(flags)
        return values

    def _track_view(
        self,
        ep: Episode,
        cam: str,
        camera: EpisodeCamera,
        timestamps: np.ndarray,
        truth: np.ndarray | None,
        number: int,
    ) -> HandTrackSequence:
        config = self.config
        if config.tracker == "sim":
            rng = np.random.default_rng([config.seed, ep.index, number])
            return simulate_tracking(
                truth, camera, timestamps, errors=config.errors, rng=rng, max_gap_s=config.max_gap_s
            )
        if config.tracker == "stored":
            data = self.reader.read_episode(
                ep.index, [keys.hand_keypoints_key(cam), keys.hand_state_key(cam)]
            )
            return HandTrackSequence(
                data[keys.hand_keypoints_key(cam)], data[keys.hand_state_key(cam)]
            )
        return self._detector_view(ep, cam, timestamps)

    def _detector_view(self, ep: Episode, cam: str, timestamps: np.ndarray) -> HandTrackSequence:
        """A registered detector (``mediapipe``, or one a plug-in registers) over the frames."""
        from data_collection.hand_tracking.registry import make_tracker
        from data_collection.hand_tracking.sequence import track_frames

        if self._tracker is None:
            self._tracker = make_tracker(self.config.tracker)
        start, stop = ep.rows["step"]
        key = keys.camera_key(cam)

        def frames() -> Iterator[np.ndarray]:
            for row in range(start, stop):
                yield self.reader.read_frames(key, [row])[0]

        return track_frames(
            frames(), timestamps, self._tracker, max_gap_s=self.config.max_gap_s, progress=False
        )

    def _terminal(self, ep: Episode, timestamps: np.ndarray) -> np.ndarray:
        terminal = np.zeros(len(timestamps), np.uint8)
        if ep.info.success and len(timestamps):
            terminal[timestamps >= timestamps[-1] - self.config.terminal_s + 1e-9] = 1
        return terminal

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()


def label_store(config: LabelConfig, *, progress: bool = True) -> LabelReport:
    """Label every selected episode of ``config.store``; flagged ones excluded (if asked)."""
    labeller = Labeller(config)
    try:
        annotate_episodes(
            config.store,
            labeller.specs(),
            labeller.rows(progress=progress),
            overwrite=config.overwrite,
            allow_nonfinite=True,
        )
    finally:
        labeller.close()
    report = labeller.report
    if report.flagged and config.exclude_flagged:
        for index, why in report.flagged.items():
            set_excluded(config.store, [index], excluded=True, reason=f"tracks: {why}")
    return report
