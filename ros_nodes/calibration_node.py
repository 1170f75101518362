"""calibration_node: ``rl calibrate``'s procedure on live topics; results on /tf_static.

Inputs: each configured camera's ``/camera/<name>/color/image_raw/compressed`` and the hand
pose on ``/franka/ee_pose`` (franka_node or sim_node, the same topics). Modes:

``auto``    plans the calibration poses (calibration.sim.plan_poses, from the cell's nominal
            camera layout) and sends each as a target on ``/franka/target_pose``: this node
            is then the one command publisher the robot bridge accepts. At every pose it
            waits until the hand has settled on the target, then takes for each camera the
            newest frame stamped after the arm settled, with the hand pose of that frame's
            stamp (refused when no hand pose is that close in time, or the arm moved).
``manual``  a view per press of Joy button ``capture_button`` or ``capture`` on
            ``/calibration/command`` (the board held by a person, or the arm guided by hand);
            ``solve`` there (or ``views`` captured) solves. Without hand poses (no robot)
            only intrinsics come out.
``publish`` loads the saved calibration file and publishes it (a static broadcaster).

The solve is the library's (calibration.procedure: intrinsics, hand-eye with refinement,
held-out-view check, camera-to-camera); the file is saved where every command finds it,
updating it: cameras calibrated in an earlier run (the front before the wrist) are kept, and
every camera in the file is published. The result is latched (transient local, depth 1) so
late joiners get it: ``/tf_static`` (fixed cameras from ``fr3_link0``, hand cameras from
``fr3_hand_tcp``, to ``<name>_color_optical_frame``) and ``/calibration/<name>/camera_info``.
Progress and residuals: ``/calibration/status`` (latched JSON).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass

import numpy as np

from calibration.calibration_file import CalibrationFileError, WorkcellCalibration
from calibration.detection import BoardDetector, BoardNotFoundError
from calibration.intrinsics import CalibrationInputError, calibrate_intrinsics
from calibration.procedure import (
    ROBOT_POSE_STD,
    CapturedView,
    calibrate_camera,
    calibrate_pairs,
    workcell_calibration,
)
from robot_learning.geometry import pose_from_transform, transform_error, transform_from_pose
from robot_learning.sim import scene
from ros_nodes import convert, msgs, topics
from ros_nodes.runtime import DEFAULT, LATCHED, SENSOR_DATA, Node, ParameterError, run_node

MODES = ("auto", "manual", "publish")
HAND_HISTORY_S = 3.0  # hand poses kept to look up the pose at a frame's stamp


@dataclass
class _Move:
    """The pose being visited: its target, when the move began, since when it is steady."""

    index: int
    T_base_hand: np.ndarray
    started_s: float
    steady_since_s: float | None = None
    settled_s: float | None = None  # stamp of the hand pose that completed the settle


class CalibrationNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        self.mode = p(
            "mode",
            "auto",
            "auto (the arm visits planned poses), manual (capture on "
            "a Joy button or /calibration/command) or publish (the "
            "saved file)",
        )
        self.camera_names = list(p("cameras", ["front"], "cameras to calibrate"))
        self.hand_cameras = set(
            p(
                "hand_cameras",
                ["wrist"],
                "which of them ride on the hand (eye-in-hand); the rest are fixed",
            )
        )
        self.board_mount = p(
            "board",
            "gripper",
            "board and its mount: gripper (held by the "
            "hand, for fixed cameras) or table (for hand "
            "cameras)",
        )
        self.views = p("views", 15, "poses to visit (auto) or views to capture (manual)")
        self.seed = p("seed", 0, "seed of the pose plan")
        self.workcell_name = p("workcell", "sim", "workcell name of the calibration file")
        self.out = p("out", "", "calibration file (empty: $RL_CALIBRATION_DIR/<workcell>.yaml)")
        serials = p(
            "serials", "", "camera serials, name=serial comma-separated (default: the name)"
        )
        self.holdout = p("holdout", True, "keep views out and check the solve predicts them")
        self.force = p("force", False, "save and publish even when the held-out check fails")
        pose_std = p(
            "robot_pose_std",
            list(ROBOT_POSE_STD),
            "accuracy of the reported hand pose per axis: [mm, deg]",
        )
        self.tolerance_m = (
            p("tolerance_mm", 2.0, "auto: settled within this of the target, mm") / 1000.0
        )
        self.tolerance_rad = np.radians(p("tolerance_deg", 0.5, "auto: and this, deg"))
        self.still_m = (
            p("still_mm", 0.2, "auto: hand motion below this counts as still, mm") / 1000.0
        )
        self.settle_s = p("settle_s", 0.3, "auto: still and on target this long = settled")
        self.move_timeout_s = p(
            "move_timeout_s", 8.0, "auto: a pose not reached in this long is skipped"
        )
        self.max_skew_s = p(
            "max_stamp_skew_s", 0.02, "a frame needs a hand pose this close to its stamp, s"
        )
        self.frame_timeout_s = p(
            "frame_timeout_s",
            2.0,
            "auto: a camera without a frame stamped after the settle this long misses that view, s",
        )
        self.input_timeout_s = p(
            "input_timeout_s",
            30.0,
            "fail when the cameras or the hand pose are silent this long, s",
        )
        self.capture_button = p(
            "capture_button", topics.JoyButton.START, "manual: Joy button that captures a view"
        )
        rate_hz = p("rate_hz", 50.0, "control loop rate, Hz")
        self.node = node
        self._check_parameters()
        self.robot_pose_std = (float(pose_std[0]), float(pose_std[1]))
        self.serials = {
            name.strip(): serial.strip().lstrip("_")
            for name, _, serial in (item.partition("=") for item in serials.split(","))
            if serial.strip()
        }
        self.board = scene.BOARD_MOUNTS[self.board_mount].board
        self.detector = BoardDetector(self.board)
        self._tf = node.create_publisher(msgs.TFMessage, topics.TF_STATIC, LATCHED)
        self._status = node.create_publisher(msgs.String, topics.CALIBRATION_STATUS, LATCHED)
        self._infos = {
            name: node.create_publisher(
                msgs.CameraInfo, topics.calibrated_camera_info(name), LATCHED
            )
            for name in self.camera_names
        }
        self.state = "starting"
        self.error: str | None = None
        self.result: dict | None = None
        self.captured: dict[str, list[CapturedView]] = {n: [] for n in self.camera_names}
        self.missed: dict[str, int] = {n: 0 for n in self.camera_names}
        self.skipped: list[int] = []
        self.capture_count = 0
        self.plan: list[np.ndarray] = []
        if self.mode == "publish":
            self._publish_saved()
            return
        self._frames: dict[str, msgs.CompressedImage] = {}
        self._hand: deque[tuple[float, np.ndarray]] = deque()
        for name in self.camera_names:
            node.create_subscription(
                msgs.CompressedImage,
                topics.CameraTopics(name).compressed,
                lambda m, n=name: self._frames.__setitem__(n, m),
                SENSOR_DATA,
            )
        node.create_subscription(msgs.PoseStamped, topics.EE_POSE, self._on_hand, DEFAULT)
        self._started_s = node.now_s()
        self._move: _Move | None = None
        self._want_capture: float | None = None  # manual: capture frames stamped after this
        if self.mode == "auto":
            self.plan = self._plan()
            self._target = node.create_publisher(msgs.PoseStamped, topics.TARGET_POSE, DEFAULT)
            node.create_subscription(
                msgs.String, topics.ROBOT_STATUS, self._on_robot_status, LATCHED
            )
        else:
            self._joy_buttons: list[int] = []
            node.create_subscription(msgs.Joy, topics.JOY, self._on_joy, DEFAULT)
            node.create_subscription(
                msgs.String, topics.CALIBRATION_COMMAND, self._on_command, DEFAULT
            )
        self._timer = node.create_timer(1.0 / rate_hz, self._tick)
        self._set_state("waiting")
        node.log.info(
            "calibrating %s (%s) with the %s board, %s mode, %d %s",
            self.camera_names,
            ", ".join(self._mount(n) for n in self.camera_names),
            self.board_mount,
            self.mode,
            self.views,
            "poses" if self.mode == "auto" else "views",
        )

    # -- set-up ----------------------------------------------------------------------------
    def _check_parameters(self) -> None:
        if self.mode not in MODES:
            raise ParameterError(
                f"calibration_node: parameter mode must be one of {MODES}, got {self.mode!r}"
            )
        if self.board_mount not in scene.BOARD_MOUNTS:
            raise ParameterError(
                f"calibration_node: parameter board must be one of "
                f"{sorted(scene.BOARD_MOUNTS)}, got {self.board_mount!r}"
            )
        if not self.camera_names:
            raise ParameterError("calibration_node: parameter cameras is empty; name at least one")
        wrong = [
            n
            for n in self.camera_names
            if (n in self.hand_cameras) != (self.board_mount == "table")
        ]
        if wrong and self.mode != "publish":
            raise ParameterError(
                f"calibration_node: camera(s) {wrong} cannot see the {self.board_mount} board "
                f"while the hand moves it: hand cameras calibrate against board:=table, fixed "
                f"cameras against board:=gripper (run once per board)"
            )
        if self.views < 6 and self.mode != "publish":
            raise ParameterError(
                f"calibration_node: parameter views must be at least 6 (hand-eye "
                f"and the held-out check need them), got {self.views}"
            )

    def _mount(self, name: str) -> str:
        return "hand" if name in self.hand_cameras else "fixed"

    def _plan(self) -> list[np.ndarray]:
        """Poses around the board from the nominal (CAD) camera layout of the cell."""
        from calibration.sim import SimCalibrationConfig, plan_poses

        config = SimCalibrationConfig(
            seed=self.seed,
            views=self.views,
            wrist_cameras=tuple(n for n in self.camera_names if n in self.hand_cameras),
            fixed_cameras=tuple(n for n in self.camera_names if n not in self.hand_cameras),
        )
        return plan_poses(
            config, self.board_mount, self.camera_names, np.random.default_rng([self.seed, 7])
        )

    # -- inputs ----------------------------------------------------------------------------
    def _on_hand(self, msg: msgs.PoseStamped) -> None:
        v = convert.pose_vector(msg)
        stamp = convert.stamp_s(msg)
        self._hand.append((stamp, transform_from_pose(v[:3], v[3:])))
        while self._hand and self._hand[0][0] < stamp - HAND_HISTORY_S:
            self._hand.popleft()

    def _on_robot_status(self, msg: msgs.String) -> None:
        """The bridge holds the arm (another command publisher, a reflex): poses would time
        out one by one, so stop now with the bridge's reason."""
        status = json.loads(msg.data)
        if status.get("state") == "hold" and self.state in ("waiting", "capturing"):
            self._fail(
                f"the arm is on hold ({topics.ROBOT_STATUS}): {status.get('error')}; "
                "calibration_node must be the only publisher on "
                f"{topics.TARGET_POSE}; fix that and start it again"
            )

    def _on_joy(self, msg: msgs.Joy) -> None:
        buttons = list(msg.buttons)
        previous = self._joy_buttons or [0] * len(buttons)
        self._joy_buttons = buttons
        i = self.capture_button
        if i < len(buttons) and buttons[i] and not previous[i]:
            self._request_capture(f"joy button {i}")

    def _on_command(self, msg: msgs.String) -> None:
        word = msg.data.strip().lower()
        if word == "capture":
            self._request_capture("command")
        elif word == "solve":
            self._solve()
        else:
            self.node.log.warning(
                "%s: unknown command %r (capture | solve)", topics.CALIBRATION_COMMAND, msg.data
            )

    def _request_capture(self, why: str) -> None:
        if self.state in ("waiting", "capturing"):
            self.node.log.info("capture requested (%s)", why)
            self._want_capture = self.node.now_s()

    def hand_at(self, stamp_s: float) -> np.ndarray | None:
        """The hand pose stamped closest to ``stamp_s``, if within ``max_stamp_skew_s``."""
        if not self._hand:
            return None
        stamp, T = min(self._hand, key=lambda item: abs(item[0] - stamp_s))
        return T if abs(stamp - stamp_s) <= self.max_skew_s else None

    # -- the loop --------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.state in ("done", "failed", "solving"):
            return
        now = self.node.now_s()
        inputs = [n for n in self.camera_names if n not in self._frames]
        if self.mode == "auto" and not self._hand:
            inputs.append(topics.EE_POSE)
        if self.state == "waiting":
            if inputs:
                if now - self._started_s > self.input_timeout_s:
                    silent = [
                        topics.CameraTopics(n).compressed if n in self.camera_names else n
                        for n in inputs
                    ]
                    self._fail(
                        f"no messages after {self.input_timeout_s:.0f} s on: "
                        f"{', '.join(silent)}; start the cameras and the robot bridge "
                        "(franka_node or sim_node) with these topics"
                    )
                return
            self._set_state("capturing")
        if self.mode == "auto":
            self._auto_step(now)
        elif self._want_capture is not None:
            self._manual_step()

    def _auto_step(self, now: float) -> None:
        if self._move is None:
            index = len(self.skipped) + self.capture_count
            if index >= len(self.plan):
                self._solve()
                return
            self._move = _Move(index, self.plan[index], now)
        move = self._move
        position, quaternion = pose_from_transform(move.T_base_hand)
        self._target.publish(convert.pose_stamped(position, quaternion, now))
        if move.settled_s is None:
            if now - move.started_s > self.move_timeout_s:
                stamp, T = self._hand[-1]
                error_m, error_rad = transform_error(T, move.T_base_hand)
                self.node.log.warning(
                    "pose %d not reached in %.0f s (%.1f mm, %.2f deg off); skipped",
                    move.index,
                    self.move_timeout_s,
                    1000 * error_m,
                    np.degrees(error_rad),
                )
                self.skipped.append(move.index)
                self._move = None
                self._publish_status()
                return
            move.settled_s = self._settled(move)
            return
        frames = {n: self._frames[n] for n in self.camera_names}
        fresh = {n: f for n, f in frames.items() if convert.stamp_s(f) > move.settled_s}
        if len(fresh) < len(frames) and now - move.settled_s > self.frame_timeout_s:
            for name in sorted(set(frames) - set(fresh)):
                self.node.log.warning(
                    "%s: no frame stamped after the arm settled (%.3f) within %.1f s, newest "
                    "%.3f; view %d dropped for %s (camera stalled, or its clock behind?)",
                    topics.CameraTopics(name).compressed,
                    move.settled_s,
                    self.frame_timeout_s,
                    convert.stamp_s(frames[name]),
                    move.index,
                    name,
                )
                self.missed[name] += 1
            frames = fresh
        elif len(fresh) < len(frames):
            return
        self._capture(move.index, frames, settled=move.T_base_hand)
        self._move = None

    def _settled(self, move: _Move) -> float | None:
        """The stamp at which the hand has been on target and still for ``settle_s``."""
        stamp, T = self._hand[-1]
        error_m, error_rad = transform_error(T, move.T_base_hand)
        window = [T_ for s, T_ in self._hand if s >= stamp - self.settle_s]
        spread_m = max(np.linalg.norm(T_[:3, 3] - T[:3, 3]) for T_ in window)
        if error_m > self.tolerance_m or error_rad > self.tolerance_rad or spread_m > self.still_m:
            move.steady_since_s = None
            return None
        if move.steady_since_s is None:
            move.steady_since_s = stamp
        return stamp if stamp - move.steady_since_s >= self.settle_s else None

    def _manual_step(self) -> None:
        frames = {n: self._frames[n] for n in self.camera_names}
        if all(convert.stamp_s(f) >= self._want_capture for f in frames.values()):
            self._want_capture = None
            self._capture(self.capture_count, frames, settled=None)
            if self.capture_count >= self.views:
                self._solve()

    def _capture(
        self, index: int, frames: dict[str, msgs.CompressedImage], settled: np.ndarray | None
    ) -> None:
        """Detect the board in each camera's frame, paired with the hand pose of its stamp."""
        for name, frame in frames.items():
            where = f"{topics.CameraTopics(name).compressed} view {index}"
            stamp = convert.stamp_s(frame)
            T_base_hand = self.hand_at(stamp)
            if T_base_hand is None and (self.mode == "auto" or self._hand):
                self.node.log.warning(
                    "%s: no hand pose on %s within %.3f s of the frame stamp "
                    "%.3f; view dropped (are the clocks in sync?)",
                    where,
                    topics.EE_POSE,
                    self.max_skew_s,
                    stamp,
                )
                self.missed[name] += 1
                continue
            if settled is not None and transform_error(T_base_hand, settled)[0] > self.tolerance_m:
                self.node.log.warning(
                    "%s: the arm had moved off the pose at the frame's stamp; view dropped", where
                )
                self.missed[name] += 1
                continue
            try:
                detection = self.detector.detect(convert.compressed_array(frame), where=where)
            except BoardNotFoundError as exc:
                self.node.log.info("%s", exc)
                self.missed[name] += 1
                continue
            pose = T_base_hand if T_base_hand is not None else np.eye(4)
            self.captured[name].append(CapturedView(index, pose, detection))
        self.capture_count += 1
        self.node.log.info(
            "view %d captured: %s", index, {n: len(v) for n, v in self.captured.items()}
        )
        self._publish_status()

    # -- solve and publish -----------------------------------------------------------------
    def _solve(self) -> None:
        self._set_state("solving")
        with_poses = self.mode == "auto" or bool(self._hand)
        try:
            if not with_poses:
                self._solve_intrinsics_only()
                return
            reports = {}
            for name in self.camera_names:
                reports[name] = calibrate_camera(
                    name,
                    self.captured[name],
                    mount=self._mount(name),
                    serial=self.serials.get(name, name),
                    holdout=self.holdout,
                    robot_pose_std=self.robot_pose_std,
                )
            fixed = [n for n in self.camera_names if n not in self.hand_cameras]
            pairs = calibrate_pairs(reports) if len(fixed) > 1 else {}
            calibration = workcell_calibration(
                self.workcell_name, reports, pairs, {self.board_mount: self.board}
            )
            path = calibration.save(self.out or None, force=self.force)
        except (CalibrationInputError, CalibrationFileError, ValueError) as exc:
            self._fail(f"solve failed: {exc}")
            return
        solved = sorted(calibration.cameras)
        calibration = WorkcellCalibration.load(path)  # the file's other cameras were kept
        self.node.log.info(
            "calibration of %s saved to %s (cameras in the file: %s)",
            solved,
            path,
            sorted(calibration.cameras),
        )
        self.result = {
            "file": str(path),
            "fingerprint": calibration.fingerprint(),
            "residuals": {n: c.residuals for n, c in calibration.cameras.items()},
            "camera_pairs": calibration.camera_pairs,
        }
        self.publish(calibration)
        self._set_state("done")

    def _solve_intrinsics_only(self) -> None:
        """A hand-held board and no robot: intrinsics (CameraInfo), no transforms, no file."""
        self.result = {"residuals": {}}
        for name in self.camera_names:
            result = calibrate_intrinsics([v.detection for v in self.captured[name]], camera=name)
            self.result["residuals"][name] = {"intrinsics": result.summary()}
            self._infos[name].publish(
                convert.camera_info(
                    result.intrinsics, self.node.now_s(), topics.CameraTopics(name).optical_frame
                )
            )
        self.node.log.info(
            "no hand poses on %s: intrinsics only, published on %s (no transforms, no file)",
            topics.EE_POSE,
            ", ".join(topics.calibrated_camera_info(n) for n in self._infos),
        )
        self._set_state("done")

    def publish(self, calibration: WorkcellCalibration) -> None:
        """/tf_static and the calibrated CameraInfo of every camera in the file, latched."""
        now = self.node.now_s()
        transforms = []
        for name, cam in calibration.cameras.items():
            parent = topics.BASE_FRAME if cam.mount == "fixed" else topics.TCP_FRAME
            transforms.append(convert.transform_stamped(cam.pose, now, parent, cam.optical_frame))
            if name in self._infos:
                self._infos[name].publish(
                    convert.camera_info(cam.intrinsics, now, cam.optical_frame)
                )
        self._tf.publish(msgs.TFMessage(transforms=transforms))
        self.node.log.info(
            "published %d static transform(s) on %s: %s",
            len(transforms),
            topics.TF_STATIC,
            [t.child_frame_id for t in transforms],
        )

    def _publish_saved(self) -> None:
        from calibration.calibration_file import calibration_path

        path = self.out or calibration_path(self.workcell_name)
        calibration = WorkcellCalibration.load(path)
        calibration.check_cameras(
            {n: self.serials.get(n, "") for n in self.camera_names}, where=str(path)
        )
        self.result = {
            "file": str(path),
            "fingerprint": calibration.fingerprint(),
            "residuals": {n: c.residuals for n, c in calibration.cameras.items()},
        }
        self.publish(calibration)
        self._set_state("done")

    # -- status ----------------------------------------------------------------------------
    def _fail(self, error: str) -> None:
        self.error = error
        self.node.log.error("%s", error)
        self._set_state("failed")

    def _set_state(self, state: str) -> None:
        self.state = state
        self._publish_status()

    def _publish_status(self) -> None:
        status = {
            "state": self.state,
            "mode": self.mode,
            "error": self.error,
            "planned": len(self.plan) if self.mode == "auto" else self.views,
            "captured": self.capture_count,
            "skipped": list(self.skipped),
            "views": {n: len(v) for n, v in self.captured.items()},
            "missed": dict(self.missed),
        }
        if self.result is not None:
            status.update(self.result)
        self._status.publish(msgs.String(data=json.dumps(status, default=_plain)))


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def main(argv: list[str] | None = None) -> int:
    return run_node("calibration_node", CalibrationNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
