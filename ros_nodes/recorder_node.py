"""recorder_node: the collection graph's topics, aligned by header stamps, into the store.

Episodes start, end and are discarded on the operator's Joy buttons (``/spacenav/joy``,
layout ``ros_nodes.topics.JoyButton``) or on ``/recorder/command`` (start | success | fail |
discard). A step at time t (episode start + k / record_hz, station clock) takes, for every
stream, the newest sample stamped at or before t; a camera frame older than
``max_frame_skew_s`` at t makes the step skipped and counted (never silently misaligned).
Every joint state in the episode becomes a row of the control-rate ``state`` stream, with
the target the arm had accepted by then. Actions are the commands the robot node accepted
(``/franka/accepted_target``, ``/franka_gripper/accepted_command``): a command the guard
refused never becomes an action.

A step is assembled as soon as every camera, the robot's state streams and the accepted
commands have delivered a sample stamped at or after it (streams arrive in stamp order, so
its samples are known however late a loaded machine delivers them), or once it is
``max_sample_wait_s`` old: a camera still behind by then costs the step. An episode is
therefore committed up to ``max_sample_wait_s`` after its end; a START pressed meanwhile is
queued, and DISCARD then drops the queued episode. A camera that stops delivering for
``camera_timeout_s`` is reported (log and status) and, per ``on_camera_silence``, the
episode pauses (steps skipped until frames return), ends (committed as failed, flagged
interrupted) or is discarded. A recorder that is stopped mid-episode (SIGINT/SIGTERM)
discards the open episode (and a queued START): nothing half-done is committed, and the
store stays valid (a SIGKILL is repaired by the store's recovery). Status (latched JSON on
``/recorder/status``): state, episode, steps, skipped steps, dropped and late frames per
camera, silent cameras, committed episodes.

With ``arbiter:=true`` (the deployment graph) every step also records who was in control and
the policy's and the operator's action from ``/arbiter/status`` (``ros_nodes.arbiter_stream``),
episodes are committed as ``policy`` or ``intervention`` with the checkpoint, takeovers and
safety counts, an arbiter fault ends the episode as interrupted, and START waits for a ready
arbiter. Without it, collection is unchanged.

Camera poses: with ``workcell:=NAME`` (``$RL_CALIBRATION_DIR/<NAME>.yaml``) or
``calibration:=FILE`` every episode records the calibration it was taken with, as human
video does (``data_collection.recorder.load_recording_calibration``): the file's intrinsics,
T_base_camera of fixed cameras, T_hand_camera of hand cameras (plus their base pose at the
episode's start), and the file's fingerprint. The file is checked at startup (a camera
missing, a failed check, older than 30 days: the node stops with why), and at START its
image sizes and serials against what the cameras report (``/camera/<name>/device_info``; a
camera that reports none, simulated or OpenCV, is not serial-checked). Neither given:
intrinsics only (no poses; ``rl tracks label`` refuses such episodes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_collection.alignment import StampedBuffer
from data_collection.recorder import (
    EpisodeRecorder,
    calibration_mismatch,
    camera_calibration,
    load_recording_calibration,
    recorded_calibration,
    recording_schema,
)
from robot_learning.geometry import transform_from_pose
from robot_learning.hardware.camera import CameraFrame
from robot_learning.hardware.robot import CartesianTarget
from robot_learning.store import Source, StoreFullError, StoreWriter
from ros_nodes import convert, msgs, topics
from ros_nodes.arbiter_stream import ArbiterStream
from ros_nodes.camera_streams import CameraStreams
from ros_nodes.episode_commands import EpisodeCommands
from ros_nodes.robot_bridge import ACCEPTED_GRIPPER, ACCEPTED_TARGET
from ros_nodes.runtime import LATCHED, RECORDING, SENSOR_DATA, Node, ParameterError, run_node

SILENCE_ACTIONS = ("pause", "end", "discard")
HORIZON_S = 3.0  # history kept per stream


@dataclass
class OpenEpisode:
    index: int
    start_s: float
    next_step_s: float
    last_control_s: float
    end_s: float | None = None
    success: bool = False
    end_notes: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    control_rows: int = 0
    skipped: int = 0


class RecorderNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        self.store_path = Path(p("store", "demos.zarr", "store to append episodes to"))
        self.task = p("task", "teleop", "task name written with every episode")
        self.operator = p("operator", "", "operator name written with every episode")
        cameras = p("cameras", ["front", "wrist"], "camera names (topics /camera/<name>/...)")
        self.record_hz = p("record_hz", 10.0, "step rate of the episode clock, Hz")
        self.control_hz = p("control_hz", 100.0, "rate of the joint states (state stream), Hz")
        camera_hz = p("camera_hz", 15.0, "nominal camera rate, Hz (for dropped-frame counts)")
        transport = p("image_transport", "compressed", "raw or compressed color images")
        self.max_skew_s = p(
            "max_frame_skew_s", 0.15, "a step skips when a camera's newest frame is older than this"
        )
        self.max_wait_s = p(
            "max_sample_wait_s",
            2.0,
            "longest a step waits for a stream's samples in flight, s",
        )
        self.camera_timeout_s = p(
            "camera_timeout_s",
            1.0,
            "a camera silent this long is reported and handled per on_camera_silence, s",
        )
        self.on_silence = p(
            "on_camera_silence",
            "pause",
            "pause, end or discard the episode when a camera goes silent",
        )
        quality = p("jpeg_quality", 90, "JPEG quality of stored images")
        self.min_free_mb = p(
            "min_free_mb",
            100.0,
            "refuse to start an episode with less free "
            "space than this on the store's filesystem, MB",
        )
        with_arbiter = p(
            "arbiter",
            False,
            "deployment: record control source and both actions "
            "from /arbiter/status, episodes as policy/intervention",
        )
        workcell = p(
            "workcell",
            "",
            "workcell whose calibration every episode records "
            "($RL_CALIBRATION_DIR/<workcell>.yaml; empty: no camera poses)",
        )
        calibration = p("calibration", "", "calibration file instead of the workcell's")
        self.calibration: tuple[Any, Path] | None = None
        if workcell or calibration:  # a doubtful file stops the node now, not at START
            try:
                self.calibration = load_recording_calibration(
                    cameras, path=calibration or None, workcell=workcell
                )
            except (ValueError, OSError) as exc:
                raise ParameterError(
                    f"recorder_node: parameter calibration/workcell: {exc} "
                    "(or record without camera poses: workcell:='')"
                ) from exc
        if self.on_silence not in SILENCE_ACTIONS:
            raise ValueError(
                f"recorder_node: on_camera_silence must be one of "
                f"{', '.join(SILENCE_ACTIONS)}, got {self.on_silence!r}"
            )
        self.node = node
        self.jpeg_quality = quality
        self.writer: StoreWriter | None = None
        self.recorder: EpisodeRecorder | None = None
        self.episode: OpenEpisode | None = None
        # A START pressed after the open episode's end, while its last samples are awaited
        # (up to max_sample_wait_s): the next episode begins at that stamp once it is done.
        self.queued_start_s: float | None = None
        self.committed = 0
        self.discarded = 0
        self.last_error: str | None = None
        self.camera_streams = CameraStreams(
            node, cameras, transport=transport, camera_hz=camera_hz, horizon_s=HORIZON_S
        )
        self.cameras = self.camera_streams.streams
        self.joints: StampedBuffer[msgs.JointState] = StampedBuffer(horizon_s=HORIZON_S)
        self.poses: StampedBuffer[msgs.PoseStamped] = StampedBuffer(horizon_s=HORIZON_S)
        self.fingers: StampedBuffer[msgs.JointState] = StampedBuffer(horizon_s=HORIZON_S)
        self.targets: StampedBuffer[msgs.PoseStamped] = StampedBuffer(horizon_s=60.0)
        self.grippers: StampedBuffer[bool] = StampedBuffer(horizon_s=60.0)
        self.twists: StampedBuffer[np.ndarray] = StampedBuffer(horizon_s=HORIZON_S)
        for msg_type, topic, buffer in (
            (msgs.JointState, topics.JOINT_STATES, self.joints),
            (msgs.PoseStamped, topics.EE_POSE, self.poses),
            (msgs.JointState, topics.GRIPPER_JOINT_STATES, self.fingers),
            (msgs.PoseStamped, ACCEPTED_TARGET, self.targets),
        ):
            node.create_subscription(
                msg_type, topic, lambda m, b=buffer: b.add(convert.stamp_s(m), m), RECORDING
            )
        node.create_subscription(
            msgs.JointState,
            ACCEPTED_GRIPPER,
            lambda m: self.grippers.add(convert.stamp_s(m), convert.gripper_closed(m)),
            RECORDING,
        )
        node.create_subscription(
            msgs.TwistStamped,
            topics.TWIST,
            lambda m: self.twists.add(convert.stamp_s(m), convert.twist_vector(m)),
            SENSOR_DATA,
        )
        self.commands = EpisodeCommands(
            node, open_episode=lambda: self.episode, begin=self._begin, discard=self._on_discard
        )
        self.arbiter: ArbiterStream | None = None
        if with_arbiter:
            self.arbiter = ArbiterStream(horizon_s=HORIZON_S)
            node.create_subscription(
                msgs.String, topics.ARBITER_STATUS, self._on_arbiter, RECORDING
            )
        self._status = node.create_publisher(msgs.String, topics.RECORDER_STATUS, LATCHED)
        node.create_timer(1.0 / (2 * self.record_hz), self._tick)
        node.create_timer(0.5, self._publish_status)
        node.on_shutdown(self._shutdown)
        self._publish_status()
        node.log.info(
            "recording cameras %s (%s) into %s, %s",
            list(self.cameras),
            transport,
            self.store_path,
            f"calibration {self.calibration[1]}"
            if self.calibration
            else "without camera poses (no workcell/calibration given)",
        )

    # -- inputs --------------------------------------------------------------------------
    def _on_arbiter(self, msg: msgs.String) -> None:
        assert self.arbiter is not None
        fault = self.arbiter.on_status(msg)
        ep = self.episode
        if fault and ep is not None and ep.end_s is None:
            self._error(f"arbiter fault: {fault}; episode {ep.index} ends, interrupted")
            ep.end_s = self.node.now_s()
            ep.success = False
            ep.end_notes = {"interrupted": fault}

    # -- episodes ------------------------------------------------------------------------
    def _begin(self, stamp_s: float) -> None:
        ep = self.episode
        if ep is not None and ep.end_s is not None and self.queued_start_s is None:
            self.queued_start_s = stamp_s
            self.node.log.info(
                "start pressed while episode %d is finishing: the next one starts once it is",
                ep.index,
            )
            return
        if ep is not None:
            self.node.log.warning("start pressed during episode %d: ignored", ep.index)
            return
        refusal = self.camera_streams.start_refusal()
        if refusal:
            return self._error(f"cannot start an episode: {refusal}")
        if self.arbiter is not None and self.arbiter.not_ready:
            return self._error(f"cannot start an episode: {self.arbiter.not_ready}")
        intrinsics = {n: s.intrinsics for n, s in self.cameras.items()}
        try:
            calibration = self._episode_calibration(intrinsics)
        except ValueError as exc:
            return self._error(f"cannot start an episode: {exc}")
        if self.writer is None:
            schema = recording_schema(
                intrinsics,
                record_hz=self.record_hz,  # type: ignore[arg-type]
                control_hz=self.control_hz,
                jpeg_quality=self.jpeg_quality,
                intervention=self.arbiter is not None,
            )
            self.writer = StoreWriter(
                self.store_path, schema, min_free_bytes=int(self.min_free_mb * 1e6)
            )
            self.recorder = EpisodeRecorder(self.writer, cameras=tuple(self.cameras))
        assert self.recorder is not None
        try:
            index = self.recorder.begin(
                source=Source.TELEOP if self.arbiter is None else Source.POLICY,
                task=self.task,
                operator=self.operator,
                calibration=calibration,
                notes={"recorded_by": self.node.fqn, "transport": "ros2"},
            )
        except StoreFullError as exc:  # below the free-space margin: refuse, stay up
            return self._error(f"cannot start an episode: {exc}")
        self.episode = OpenEpisode(index, stamp_s, stamp_s, stamp_s)
        if self.arbiter is not None:
            self.arbiter.begin(stamp_s)
        self.camera_streams.reset_counts()
        self.last_error = None
        self.node.log.info("episode %d started", index)
        self._publish_status()

    def _episode_calibration(self, intrinsics: dict[str, Any]) -> dict[str, Any]:
        """What the episode records about the cameras; hand cameras at the hand's pose now."""
        if self.calibration is None:
            return camera_calibration(intrinsics, {})
        cal, path = self.calibration
        recorded = recorded_calibration(cal, path, self.cameras, T_base_hand=self._hand_now())
        mismatch = calibration_mismatch(recorded, intrinsics, self.camera_streams.serials)
        if mismatch:
            raise ValueError(mismatch)
        return recorded

    def _hand_now(self) -> np.ndarray | None:
        newest = self.poses.newest_s
        if newest is None:
            return None
        pose = convert.pose_vector(self.poses.latest_at(newest)[1])  # type: ignore[index]
        return transform_from_pose(pose[:3], pose[3:])

    def _on_discard(self, why: str) -> None:
        """DISCARD from the operator: the newest episode, a queued one if it has not begun."""
        if self.queued_start_s is not None:
            self.queued_start_s = None
            self.node.log.warning("the queued episode was discarded before it began")
            return
        self._discard(why)

    def _begin_queued(self) -> None:
        if self.queued_start_s is not None and self.episode is None:
            stamp_s, self.queued_start_s = self.queued_start_s, None
            self._begin(stamp_s)

    def _discard(self, why: str) -> None:
        assert self.recorder is not None and self.episode is not None
        self.recorder.discard()
        if self.arbiter is not None:
            self.arbiter.episode = None
        self.node.log.warning("episode %d discarded: %s", self.episode.index, why)
        self.episode = None
        self.discarded += 1
        self._publish_status()
        self._begin_queued()

    def _commit(self) -> None:
        assert self.recorder is not None and self.episode is not None
        ep = self.episode
        if ep.steps == 0:
            return self._discard("no step could be recorded")
        notes = {
            **ep.end_notes,
            "skipped_steps": ep.skipped,
            "dropped_frames": {n: s.gaps.dropped for n, s in self.cameras.items()},
        }
        source = None
        if self.arbiter is not None:
            source, control_notes = self.arbiter.end()
            notes |= control_notes
        index = self.recorder.commit(success=ep.success, notes=notes, source=source)
        self.node.log.info(
            "episode %d committed: %d steps, %s",
            index,
            ep.steps,
            "success" if ep.success else "failed",
        )
        self.episode = None
        self.committed += 1
        self._publish_status()
        self._begin_queued()

    # -- the episode clock ---------------------------------------------------------------
    def _tick(self) -> None:
        try:
            self._record_due_steps()
        except StoreFullError as exc:
            self._stop_on_full_disk(exc)

    def _stop_on_full_disk(self, exc: StoreFullError) -> None:
        """The disk is full: drop the open episode (freeing its frames), say what is safe,
        stop the node with exit code 3 instead of a traceback."""
        self.episode = None
        if self.recorder is not None:
            try:
                self.recorder.discard()
            except OSError as error:
                self.node.log.error("could not free the open episode: %s", error)
        self.node.request_shutdown(str(exc), exit_code=3)

    def _record_due_steps(self) -> None:
        ep = self.episode
        if ep is None:
            return
        now = self.node.now_s()
        if self._check_silence(now):
            return
        # Commands take a longer path (operator -> arm node -> here) than the state stamped
        # beside them, so a step also waits for them: else a target stamped before the step
        # can arrive after it was assembled. (Waiting only while their newest sample was under
        # 0.5 s old missed any command delayed longer than that on a loaded machine.) When no
        # command comes, a step costs max_sample_wait_s of latency, never its content.
        streams = [self.joints, self.poses, self.fingers, self.targets, self.grippers]
        known = max(self.camera_streams.arrived_until(streams), now - self.max_wait_s)
        horizon = known if ep.end_s is None else min(known, ep.end_s)
        self._control_rows(ep, horizon)
        while ep.next_step_s <= horizon:
            self._step(ep, ep.next_step_s)
            ep.next_step_s = ep.start_s + (ep.steps + ep.skipped) / self.record_hz
        if ep.end_s is not None and known >= ep.end_s:
            self._commit()

    def _check_silence(self, now: float) -> bool:
        """Report cameras that went silent; returns True when the episode was ended."""
        for name, last in self.camera_streams.newly_silent(now, self.camera_timeout_s):
            stream = self.cameras[name]
            self._error(
                f"camera {name}: no frame on {stream.topic} "
                f"for {now - last:.1f} s; episode {self.on_silence}"
            )
            if self.on_silence == "discard":
                self._discard(f"camera {name} went silent")
                return True
            if self.on_silence == "end" and self.episode is not None:
                self.episode.end_s = min(now, last + self.camera_timeout_s)
                self.episode.success = False
                self.episode.end_notes = {"interrupted": f"camera {name} went silent"}
        return False

    def _control_rows(self, ep: OpenEpisode, horizon: float) -> None:
        assert self.recorder is not None
        for stamp, joints in list(self.joints.between(ep.last_control_s, horizon)):
            state = self._robot_state(stamp, joints)
            if state is None:
                continue
            self.recorder.record_control(state, self._action_at(stamp, state))
            ep.control_rows += 1
            ep.last_control_s = stamp

    def _robot_state(self, stamp: float, joints: msgs.JointState):  # type: ignore[no-untyped-def]
        pose, fingers = self.poses.latest_at(stamp), self.fingers.latest_at(stamp)
        if pose is None or fingers is None:
            return None
        return convert.robot_state(joints, pose[1], fingers[1])

    def _action_at(self, t: float, state: Any) -> CartesianTarget:
        """The accepted command in force at ``t``; before the first one, hold the pose."""
        ep = self.episode
        target = self.targets.latest_at(t)
        gripper = self.grippers.latest_at(t)
        closed = bool(gripper[1]) if gripper is not None else False
        if target is None or (ep is not None and target[0] < ep.start_s):
            return CartesianTarget(state.ee_position, state.ee_quaternion, closed, t)
        return convert.target_from_msgs(target[1], closed)

    def _step(self, ep: OpenEpisode, t: float) -> None:
        assert self.recorder is not None
        joints = self.joints.latest_at(t)
        state = None if joints is None else self._robot_state(joints[0], joints[1])
        frames: dict[str, CameraFrame] = {}
        for name, stream in self.cameras.items():
            frame = stream.frames.latest_at(t)
            if frame is None or t - frame[0] > self.max_skew_s:
                stream.late += 1
                continue
            frames[name] = stream.decode(frame[0], frame[1])
        if state is None or len(frames) < len(self.cameras) or t - state.timestamp_s > 0.1:
            ep.skipped += 1
            return
        twist = self.twists.latest_at(t)
        action = self._action_at(t, state)
        control = None if self.arbiter is None else self.arbiter.control_at(t, action.as_vector())
        self.recorder.record_step(
            time_s=t,
            state=state,
            action=action,
            twist=np.zeros(6) if twist is None else twist[1],
            frames=frames,
            control=control,
        )
        ep.steps += 1

    # -- status and shutdown -------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """The cameras can start (camera_info and device_info in, none silent) and the
        robot's state has arrived: START will work."""
        return (
            self.camera_streams.start_refusal() is None
            and self.joints.newest_s is not None
            and (self.arbiter is None or self.arbiter.not_ready is None)
        )

    def _error(self, message: str) -> None:
        self.node.log.error("%s", message)
        self.last_error = message
        self._publish_status()

    def _publish_status(self) -> None:
        ep = self.episode
        self._status.publish(
            msgs.String(
                data=json.dumps(
                    {
                        "state": "recording" if ep else "idle",
                        "ready": self.ready,
                        "episode": ep.index if ep else None,
                        "steps": ep.steps if ep else 0,
                        "control_rows": ep.control_rows if ep else 0,
                        "skipped_steps": ep.skipped if ep else 0,
                        **self.camera_streams.counts(),
                        "committed": self.committed,
                        "discarded": self.discarded,
                        "error": self.last_error,
                    }
                )
            )
        )

    def _shutdown(self) -> None:
        self.queued_start_s = None
        if self.episode is not None:
            self._discard(
                "the recorder was stopped mid-episode (interrupted); nothing of it is committed"
            )
        if self.writer is not None:
            self.writer.close()


def main(argv: list[str] | None = None) -> int:
    return run_node("recorder_node", RecorderNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
