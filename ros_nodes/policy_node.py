"""policy_node: a trained checkpoint predicting action chunks from the graph's cameras and arm.

It is the asynchronous half of the deployment: its own process, at the policy's rate. Each
tick it assembles an Observation as the recorder assembled the training steps: the time t is
the newest measured pose's stamp, and every camera (compressed color, the cameras the
checkpoint was trained on) gives its newest frame stamped at or before t, at most
``max_frame_skew_s`` older. When the executor the arbiter runs would need a new chunk (the
checkpoint's execute horizon, or at once after a START or a hand-back, which the arbiter's
``reanchors`` counter announces), it runs ``policy.act`` and publishes the chunk, stamped with
the observation time, on ``/policy/chunk`` (MultiDOFJointTrajectory, TCP poses) and
``/policy/chunk_gripper`` (JointTrajectory, finger targets); other ticks feed
``policy.observe`` for policies that keep a history. It infers only while the arbiter runs an
episode. ``/policy/status`` (latched JSON): checkpoint and fingerprint, execution config and
re-plan period (the arbiter configures its executor from it, playback ``speed`` included),
inference settings (Diffusion's ``num_samples``, which the parameter of that name may
change), ready, error, chunk counts.

Faults are told, never hidden: frames of another size than the checkpoint was trained on, a
camera or the arm that stopped publishing, or an exception in the model make the node stop
publishing chunks and say why in the status; the arbiter then holds the arm.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from data_collection.alignment import StampedBuffer
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH, camera_key, camera_name
from robot_learning.runtime import ChunkExecutor, Observation
from ros_nodes import convert, msgs, topics
from ros_nodes.runtime import DEFAULT, LATCHED, SENSOR_DATA, Node, ParameterError, run_node
from ros_nodes.topics import CameraTopics

HORIZON_S = 2.0  # history kept per stream


class PolicyNode:
    def __init__(self, node: Node) -> None:
        p = node.declare_parameter
        checkpoint = p("checkpoint", "", "checkpoint directory (rl train's output)")
        device = p("device", "cpu", "torch device for inference")
        threads = p(
            "torch_threads",
            1,
            "CPU threads torch may use (0: its default, one per "
            "core); the arbiter, camera and robot nodes need cores too",
        )
        self.max_skew_s = p(
            "max_frame_skew_s",
            0.15,
            "a camera's newest frame may be this much older than the observation time, s",
        )
        self.max_state_age_s = p(
            "max_state_age_s", 0.2, "no inference from a measured pose older than this, s"
        )
        self.wait_for_arbiter = p(
            "wait_for_arbiter", True, "infer only while /arbiter/status says an episode runs"
        )
        num_samples = p(
            "num_samples",
            0,
            "Diffusion: chunks drawn a query, their medoid played (0: the checkpoint's)",
        )
        speed = p(
            "speed",
            1.0,
            "play chunks this many times faster than predicted (1: the demonstrations' speed)",
        )
        if not checkpoint:
            raise ParameterError(
                "policy_node: parameter 'checkpoint' is required (a directory written by rl train)"
            )
        from policies import checkpoint as ckpt
        from policies.policy import ChunkPolicy

        if threads > 0:
            import torch

            torch.set_num_threads(threads)  # intra-op threads contend with the graph's nodes
        started = time.perf_counter()
        self.path = ckpt.resolve(Path(checkpoint))
        self.policy = ChunkPolicy.load(self.path, device=device)
        if num_samples:
            try:
                self.policy.change_inference(num_samples=num_samples)
            except ValueError as exc:
                raise ParameterError(f"policy_node: parameter 'num_samples': {exc}") from None
        self.fingerprint = ckpt.fingerprint(self.path)
        features = self.policy.features
        try:
            self.execution = dataclasses.replace(self.policy.execution(), speed=float(speed))
        except ValueError as exc:
            raise ParameterError(f"policy_node: parameter 'speed': {exc}") from None
        self.mirror = ChunkExecutor(self.execution)  # when the arbiter's executor re-plans
        self.node = node
        self.cameras = {
            camera_name(key): tuple(shape)
            for key, shape in zip(features.cameras, features.image_shapes, strict=True)
        }
        self.frames: dict[str, StampedBuffer[msgs.CompressedImage]] = {}
        for name in self.cameras:
            self.frames[name] = StampedBuffer(horizon_s=HORIZON_S)
            node.create_subscription(
                msgs.CompressedImage,
                CameraTopics(name).compressed,
                lambda m, n=name: self._on_frame(n, m),
                SENSOR_DATA,
            )
        self.poses: StampedBuffer[np.ndarray] = StampedBuffer(horizon_s=HORIZON_S)
        self.widths: StampedBuffer[float] = StampedBuffer(horizon_s=HORIZON_S)
        node.create_subscription(
            msgs.PoseStamped,
            topics.EE_POSE,
            lambda m: self.poses.add(convert.stamp_s(m), convert.pose_vector(m)),
            DEFAULT,
        )
        node.create_subscription(
            msgs.JointState,
            topics.GRIPPER_JOINT_STATES,
            lambda m: self.widths.add(convert.stamp_s(m), float(sum(m.position))),
            DEFAULT,
        )
        node.create_subscription(msgs.String, topics.ARBITER_STATUS, self._on_arbiter, DEFAULT)
        self._chunk_pub = node.create_publisher(
            msgs.MultiDOFJointTrajectory, topics.POLICY_CHUNK, DEFAULT
        )
        self._gripper_pub = node.create_publisher(
            msgs.JointTrajectory, topics.POLICY_CHUNK_GRIPPER, DEFAULT
        )
        self._status = node.create_publisher(msgs.String, topics.POLICY_STATUS, LATCHED)
        self.episode: int | None = None  # the arbiter's episode being served
        self.anchor = (0, 0)  # (episode, reanchors): a change asks for a chunk at once
        self.anchor_s = float("-inf")  # the arbiter drops chunks predicted before this
        self.active = not self.wait_for_arbiter
        self.error: str | None = "no frames or measured pose checked yet"
        self.failed: str | None = None  # the model raised: no more chunks from this process
        self.chunks = 0
        self.skipped = 0
        self.latencies_s: list[float] = []
        self._warm_up()
        node.create_timer(features.period_s, self._tick)
        node.create_timer(1.0, self._check_inputs)
        self._publish_status()
        node.log.info(
            "policy %s (%s) ready in %.1f s: cameras %s at %.0f Hz, execute %d steps%s",
            self.path,
            self.policy.config.name,
            time.perf_counter() - started,
            {n: s[:2] for n, s in self.cameras.items()},
            features.rate_hz,
            self.execution.execute_steps,
            "" if self.execution.temporal_ensemble_k is None else " (ensembling)",
        )

    def _warm_up(self) -> None:
        """One inference on blank inputs, so the first real one is not slowed by lazy init."""
        values: dict[str, Any] = {
            camera_key(n): np.zeros(s, np.uint8) for n, s in self.cameras.items()
        }
        values[EE_POSE] = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])
        values[GRIPPER_WIDTH] = np.float64(0.08)
        self.policy.act(Observation(time_s=0.0, values=values))
        self.policy.reset()

    @property
    def replan_period_s(self) -> float:
        return self.execution.replan_period_s(self.policy.features.period_s)

    # -- inputs --------------------------------------------------------------------------
    def _on_frame(self, name: str, msg: msgs.CompressedImage) -> None:
        self.frames[name].add(convert.stamp_s(msg), msg)

    def _on_arbiter(self, msg: msgs.String) -> None:
        status = json.loads(msg.data)
        if not self.wait_for_arbiter:
            return
        active = bool(status.get("active"))
        anchor = (int(status.get("episode", 0)), int(status.get("reanchors", 0)))
        if active and anchor[0] != self.episode:
            self.episode = anchor[0]
            self.policy.reset()
            self.node.log.info("episode %d: inferring", self.episode)
        if active and anchor != self.anchor:
            self.mirror.reset()  # START or hand-back: the arbiter waits for a fresh chunk
        self.anchor = anchor
        self.anchor_s = float(status.get("anchor_s") or float("-inf"))
        self.active = active

    # -- the policy tick -----------------------------------------------------------------
    def _tick(self) -> None:
        if not self.active or self.failed:
            return
        now = self.node.now_s()
        act = self.mirror.needs_chunk(now)
        if not act and self.policy.observation_period_s is None:
            return
        observation = self._observation(now)
        if observation is None:
            self.skipped += 1
            return
        if act and observation.time_s < self.anchor_s:
            return  # the newest pose predates the (re-)anchor: the arbiter would drop it
        try:
            if not act:
                self.policy.observe(observation)
                return
            started = time.perf_counter()
            chunk = self.policy.act(observation)
            self.latencies_s.append(time.perf_counter() - started)
        except Exception as exc:  # the model failed: stop, hold the arm, say why
            self.failed = f"policy inference failed: {exc!r}"
            self.node.log.exception("%s", self.failed)
            self._set_error(self.failed)
            return
        poses, fingers = convert.chunk_messages(chunk)
        self._chunk_pub.publish(poses)
        self._gripper_pub.publish(fingers)
        self.mirror.add(chunk)
        self.chunks += 1

    def _observation(self, now: float) -> Observation | None:
        """The observation at the newest measured pose, or None (the error says why)."""
        pose = self.poses.latest_at(now)
        if pose is None or now - pose[0] > self.max_state_age_s:
            age = "none yet" if pose is None else f"{now - pose[0]:.2f} s old"
            return self._set_error(f"no fresh measured pose on {topics.EE_POSE} ({age})")
        t = pose[0]
        width = self.widths.latest_at(t)
        values: dict[str, Any] = {
            EE_POSE: pose[1],
            GRIPPER_WIDTH: np.float64(width[1] if width is not None else 0.0),
        }
        stamps = {EE_POSE: t, GRIPPER_WIDTH: t if width is None else width[0]}
        for name, shape in self.cameras.items():
            frame = self.frames[name].latest_at(t)
            topic = CameraTopics(name).compressed
            if frame is None or t - frame[0] > self.max_skew_s:
                age = "none" if frame is None else f"newest {t - frame[0]:.2f} s before the pose"
                return self._set_error(
                    f"no frame on {topic} within {self.max_skew_s} s of the measured pose ({age})"
                )
            color = convert.compressed_array(frame[1])
            if color.shape != shape:
                return self._set_error(
                    f"{topic} delivers {color.shape[0]}x{color.shape[1]} frames; checkpoint "
                    f"{self.path} was trained on {shape[0]}x{shape[1]}: set the camera's size "
                    "or use a checkpoint trained for these cameras"
                )
            values[camera_key(name)] = color
            stamps[camera_key(name)] = frame[0]
        self._set_error(None)
        return Observation(time_s=t, values=values, timestamps_s=stamps)

    # -- status --------------------------------------------------------------------------
    def _check_inputs(self) -> None:
        """Between episodes too: are the cameras and the arm there, at the trained size?"""
        if not self.active:
            self._observation(self.node.now_s())
        self._publish_status()

    def _set_error(self, error: str | None) -> None:
        if error != self.error:
            if error:
                self.node.log.error("%s", error)
            self.error = error
            self._publish_status()

    def _publish_status(self) -> None:
        ms = np.asarray(self.latencies_s[-200:]) * 1e3
        ex = self.execution
        self._status.publish(
            msgs.String(
                data=json.dumps(
                    {
                        "ready": self.failed is None and self.error is None,
                        "error": self.failed or self.error,
                        "checkpoint": str(self.path),
                        "checkpoint_sha256": self.fingerprint,
                        "policy": self.policy.config.name,
                        "cameras": {n: list(s) for n, s in self.cameras.items()},
                        "rate_hz": self.policy.features.rate_hz,
                        "execution": {
                            "execute_steps": ex.execute_steps,
                            "temporal_ensemble_k": ex.temporal_ensemble_k,
                            "interpolate": ex.interpolate,
                            "speed": ex.speed,
                        },
                        "replan_period_s": self.replan_period_s,
                        "inference": self.policy.inference_settings(),
                        "active": self.active,
                        "chunks": self.chunks,
                        "skipped": self.skipped,
                        "latency_ms_p50": float(np.percentile(ms, 50)) if len(ms) else None,
                        "latency_ms_max": float(ms.max()) if len(ms) else None,
                    }
                )
            )
        )


def main(argv: list[str] | None = None) -> int:
    return run_node("policy_node", PolicyNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
