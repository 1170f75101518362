"""FrankaRobot: the Robot interface on a real FR3/Panda (or franky-sim) through franky-control.

Control choices and why:
- Cartesian targets (``cartesian_mode="impedance"``, the default) go to one long-lived
  ``franky.CartesianImpedanceTrackingMotion`` whose reference is replaced on every call: a
  10-100 Hz policy or teleop loop gets a compliant 1 kHz tracker, seeded at the current pose,
  with the error (hence force) clipped. ``cartesian_mode="motion"`` instead sends each target
  as an asynchronous ``franky.CartesianMotion`` (jerk-limited Ruckig re-plan, respects
  ``relative_dynamics_factor``); good for a few point-to-point moves, but a fast stream of
  targets makes it overshoot (measured on franky-sim: up to 2.5x the target amplitude).
  Either way targets are clamped to a workspace box and to a maximum distance from the
  *measured* TCP pose, so a bad target cannot make the arm jump.
- The TCP pose is computed from the measured joints with libfranka's model
  (``model.pose(Frame.EndEffector, state)``), not read from ``O_T_EE``: on the real arm the two
  agree, but franky-sim 1.0.4 reports the pose of the *desired* joints there.
- Gripper commands are asynchronous franky futures, sent only when the command changes; a
  background thread keeps the latest gripper width so ``read_state`` never waits on the
  gripper's own state rate (both in ``franka_gripper``).
- Errors from libfranka (reflexes, aborted motions, network loss) surface as
  :class:`FrankaError` / :class:`FrankaReflexError` (``franka_errors``) naming the host;
  :meth:`recover` runs the automatic error recovery (or reconnects after a lost connection).

Timestamps (station clock = host ``time.time()``): a state sample is stamped with the host time
at which franky first returned it (libfranka keeps only the newest 1 kHz packet, so that is at
most about one millisecond after the robot sent it). A sample whose robot time has not advanced
keeps its first stamp, so a stalled link shows up as a growing ``now - timestamp_s``.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from robot_learning.geometry import normalized_quat, quat_angle_rad, slerp_xyzw
from robot_learning.hardware.franka_errors import FrankaError, FrankaReflexError
from robot_learning.hardware.franka_gripper import FrankaGripper
from robot_learning.hardware.robot import CartesianTarget, Robot, RobotState
from robot_learning.limits import RobotLimits, load_limits

logger = logging.getLogger(__name__)

# FR3 joint limits from the Franka datasheet [rad] (tighter than the URDF's physical ones).
FR3_JOINT_LOWER_RAD = np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159])
FR3_JOINT_UPPER_RAD = np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159])
# The ready pose franky-sim starts in and most Franka examples use.
FR3_READY_JOINTS_RAD = np.array([0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785])


# ------------------------------------------------------------------ the robot


class FrankaRobot(Robot):
    """An FR3/Panda arm (+ Franka Hand) through franky; also drives franky-sim unchanged."""

    name = "franka"

    def __init__(
        self,
        *,
        host: str,
        relative_dynamics_factor: float = 0.1,
        limits: RobotLimits | None = None,
        enforce_realtime: bool = True,
        use_gripper: bool = True,
        connect_timeout_s: float = 3.0,
        gripper_speed_m_s: float = 0.05,
        grasp_force_n: float = 20.0,
        collision_torque_threshold_nm: float = 20.0,
        collision_force_threshold_n: float = 30.0,
        cartesian_mode: str = "impedance",
        translational_stiffness_n_m: float = 1500.0,
        rotational_stiffness_nm_rad: float = 100.0,
        translational_error_clip_m: float = 0.03,
        rotational_error_clip_rad: float = 0.2,
    ) -> None:
        if cartesian_mode not in ("impedance", "motion"):
            raise ValueError(
                f"cartesian_mode must be 'impedance' or 'motion', got {cartesian_mode!r}"
            )
        if not 0.0 < relative_dynamics_factor <= 1.0:
            raise ValueError(
                f"relative_dynamics_factor must be in (0, 1], got {relative_dynamics_factor}"
            )
        self.host = host
        self.relative_dynamics_factor = relative_dynamics_factor
        self.limits = limits or load_limits("fr3")
        self.enforce_realtime = enforce_realtime
        self.use_gripper = use_gripper
        self.connect_timeout_s = connect_timeout_s
        self.gripper_speed_m_s = gripper_speed_m_s
        self.grasp_force_n = grasp_force_n
        self.collision_torque_threshold_nm = collision_torque_threshold_nm
        self.collision_force_threshold_n = collision_force_threshold_n
        self.cartesian_mode = cartesian_mode
        self.translational_stiffness_n_m = translational_stiffness_n_m
        self.rotational_stiffness_nm_rad = rotational_stiffness_nm_rad
        self.translational_error_clip_m = translational_error_clip_m
        self.rotational_error_clip_rad = rotational_error_clip_rad
        self._tracker = None  # the running CartesianImpedanceTrackingMotion, if any
        self._tracker_target: CartesianTarget | None = None
        self._robot = None
        self._gripper: FrankaGripper | None = None
        self._last_robot_time_ms: int | None = None
        self._last_stamp_s = 0.0
        self._lost_connection = False

    # ---------------------------------------------------------------- connection

    @property
    def is_connected(self) -> bool:
        return self._robot is not None

    def connect(self) -> None:
        if self._robot is not None:
            return
        import franky

        realtime = (
            franky.RealtimeConfig.Enforce if self.enforce_realtime else franky.RealtimeConfig.Ignore
        )
        robot = self._call_with_timeout(
            "connect to the robot",
            lambda: franky.Robot(
                self.host,
                relative_dynamics_factor=self.relative_dynamics_factor,
                default_torque_threshold=self.collision_torque_threshold_nm,
                default_force_threshold=self.collision_force_threshold_n,
                realtime_config=realtime,
            ),
        )
        if self.use_gripper:
            gripper = self._call_with_timeout(
                "connect to the gripper", lambda: franky.Gripper(self.host)
            )
            self._gripper = FrankaGripper(gripper, host=self.host)
        self._robot = robot
        self._lost_connection = False
        logger.info(
            "connected to franka at %s (relative dynamics factor %.2f)",
            self.host,
            self.relative_dynamics_factor,
        )

    def _call_with_timeout(self, what: str, fn):  # noqa: ANN001, ANN202
        """Run a blocking libfranka call in a thread: a host that accepts TCP but never answers
        would otherwise block connect() indefinitely."""
        box: dict[str, object] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except Exception as exc:  # noqa: BLE001 - re-raised below with the host named
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"franka-{what}", daemon=True)
        thread.start()
        thread.join(self.connect_timeout_s)
        if thread.is_alive():
            raise FrankaError(
                f"could not {what} at {self.host}: no answer within {self.connect_timeout_s:.1f} s "
                "(is the robot on, FCI enabled and the host reachable?)"
            )
        if "error" in box:
            exc = box["error"]
            raise FrankaError(f"could not {what} at {self.host}: {exc}") from exc  # type: ignore[misc]
        return box["value"]

    def disconnect(self) -> None:
        if self._robot is None:
            return
        if not self._lost_connection:
            try:
                self.stop()
            except FrankaError as exc:
                logger.warning("stopping before disconnect failed: %s", exc)
        self._release_gripper()
        self._robot = None  # franky closes its sockets when the objects go away
        self._last_robot_time_ms = None
        logger.info("disconnected from franka at %s", self.host)

    def _release_gripper(self) -> None:
        if self._gripper is not None:
            self._gripper.release()
        self._gripper = None

    def _require(self):  # noqa: ANN202
        if self._robot is None:
            raise FrankaError(f"franka at {self.host} is not connected; call connect() first")
        return self._robot

    # ---------------------------------------------------------------- errors

    def _wrap(self, what: str, exc: Exception) -> FrankaError:
        """Turn a franky exception into ours, telling reflexes from other failures."""
        import franky

        if isinstance(exc, franky.NetworkException):
            self._lost_connection = True
        reflex = False
        if not self._lost_connection and self._robot is not None:
            try:
                reflex = bool(self._robot.has_errors)
            except Exception:  # noqa: BLE001 - the original error is what matters
                reflex = False
        cls = FrankaReflexError if reflex or "reflex" in str(exc) else FrankaError
        detail = ""
        if cls is FrankaReflexError and self._robot is not None:
            try:  # libfranka's message may predate the state packet that lists the errors
                detail = f" (robot errors: {self._robot.state.last_motion_errors})"
            except Exception:  # noqa: BLE001
                detail = ""
        hint = "; call recover()" if cls is FrankaReflexError or self._lost_connection else ""
        return cls(f"franka at {self.host}: {what} failed: {exc}{detail}{hint}")

    def _surface_motion_error(self) -> None:
        """Raise an error left behind by an asynchronous motion (franky holds it until polled)."""
        robot = self._require()
        try:
            robot.poll_motion()
        except Exception as exc:  # noqa: BLE001 - franky raises several unrelated types
            self._tracker = None
            if "preempted" in str(exc).lower():
                return  # our own stop() or a replaced target: not a fault
            raise self._wrap("the previous motion", exc) from exc
        if self._tracker is not None and not robot.is_in_control:
            # The tracker never ends by itself: it was aborted, and the error may not have
            # reached poll_motion yet.
            self._tracker = None
            try:
                robot.join_motion(timeout=0.5)
            except Exception as exc:  # noqa: BLE001
                raise self._wrap("the Cartesian tracker", exc) from exc

    @property
    def has_errors(self) -> bool:
        """True while the robot reports an error (e.g. after a reflex) until recover()."""
        return bool(self._require().has_errors)

    def wait_for_motion(self, timeout_s: float = 10.0) -> bool:
        """Block until the current motion ends (for the impedance tracker, which never ends:
        until the arm rests at its target); raise the motion's error. False on timeout."""
        robot = self._require()
        if self._tracker is not None:
            return self._wait_for_tracker(timeout_s)
        try:
            return bool(robot.join_motion(timeout=timeout_s))
        except Exception as exc:  # noqa: BLE001
            if "preempted" in str(exc).lower():
                return True
            raise self._wrap("the motion", exc) from exc

    def _wait_for_tracker(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._surface_motion_error()
            target = self._tracker_target
            if self._tracker is None or target is None:
                return True
            state = self.read_state()
            if (
                np.linalg.norm(state.ee_position - target.position) < 1e-3
                and quat_angle_rad(state.ee_quaternion, target.quaternion) < 5e-3
                and np.abs(state.joint_velocities).max() < 0.02
            ):
                return True
            time.sleep(0.005)
        return False

    # ---------------------------------------------------------------- state

    def read_state(self) -> RobotState:
        import franky

        robot = self._require()
        try:
            state = robot.state
            tcp = robot.model.pose(franky.Frame.EndEffector, state)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("reading the state", exc) from exc
        now_s = time.time()
        robot_time_ms = int(state.time.to_msec())
        if robot_time_ms != self._last_robot_time_ms:
            self._last_robot_time_ms = robot_time_ms
            self._last_stamp_s = now_s
        width_m = self._gripper.width_m if self._gripper is not None else 0.0
        return RobotState(
            timestamp_s=self._last_stamp_s,
            joint_positions=np.asarray(state.q, dtype=np.float64).copy(),
            joint_velocities=np.asarray(state.dq, dtype=np.float64).copy(),
            ee_position=np.asarray(tcp.translation, dtype=np.float64).reshape(3).copy(),
            ee_quaternion=np.asarray(tcp.quaternion, dtype=np.float64).reshape(4).copy(),
            gripper_width_m=width_m,
        )

    # ---------------------------------------------------------------- arm commands

    def clamp_cartesian_target(
        self, target: CartesianTarget, current: RobotState
    ) -> CartesianTarget:
        """Clamp ``target`` into the workspace and within one step of the measured pose."""
        position = np.asarray(target.position, dtype=np.float64)
        if position.shape != (3,) or not np.isfinite(position).all():
            raise ValueError(f"Cartesian target position must be 3 finite metres, got {position}")
        quat = normalized_quat(target.quaternion, "Cartesian target quaternion")
        lim = self.limits
        position = np.clip(position, lim.workspace_min_m, lim.workspace_max_m)
        step = position - current.ee_position
        dist_m = float(np.linalg.norm(step))
        if dist_m > lim.max_lead_m:
            position = current.ee_position + step * (lim.max_lead_m / dist_m)
            position = np.clip(position, lim.workspace_min_m, lim.workspace_max_m)
        current_quat = current.ee_quaternion
        angle_rad = quat_angle_rad(current_quat, quat)
        if angle_rad > lim.max_lead_rad:
            quat = slerp_xyzw(current_quat, quat, lim.max_lead_rad / angle_rad)
        return CartesianTarget(position, quat, target.gripper_closed, target.timestamp_s)

    def send_cartesian_target(self, target: CartesianTarget) -> CartesianTarget:
        import franky

        robot = self._require()
        self._surface_motion_error()
        own_signal = (
            franky.ControlSignalType.CartesianPose
            if self.cartesian_mode == "motion"
            else franky.ControlSignalType.Torques
        )
        if robot.is_in_control and robot.current_control_signal_type not in (None, own_signal):
            raise FrankaError(
                f"franka at {self.host}: a joint motion is still running; wait_for_motion() or "
                "stop() before streaming Cartesian targets"
            )
        current = self.read_state()
        sent = self.clamp_cartesian_target(target, current)
        pose = franky.Affine(sent.position, sent.quaternion)
        try:
            if self.cartesian_mode == "motion":
                motion = franky.CartesianMotion(pose, franky.ReferenceType.Absolute)
                robot.move(motion, asynchronous=True)
            else:
                if self._tracker is None:
                    self._start_tracker(current)
                self._tracker.set_reference(franky.CartesianReference(target=pose))
                self._tracker_target = sent
        except Exception as exc:  # noqa: BLE001
            self._tracker = None
            raise self._wrap("sending a Cartesian target", exc) from exc
        self.set_gripper(closed=sent.gripper_closed)
        return sent

    def _start_tracker(self, current: RobotState) -> None:
        """Start the impedance tracker holding the measured pose, so nothing jumps."""
        import franky

        tracker = franky.CartesianImpedanceTrackingMotion(
            translational_stiffness=self.translational_stiffness_n_m,
            rotational_stiffness=self.rotational_stiffness_nm_rad,
            translational_error_clip=np.full(3, self.translational_error_clip_m),
            rotational_error_clip=np.full(3, self.rotational_error_clip_rad),
        )
        here = franky.Affine(current.ee_position, current.ee_quaternion)
        tracker.set_reference(franky.CartesianReference(target=here))
        self._require().move(tracker, asynchronous=True)
        self._tracker = tracker

    def check_joint_target(self, joint_positions: np.ndarray) -> np.ndarray:
        """Reject joint targets outside the FR3 limits (minus the margin), naming the joint."""
        q = np.asarray(joint_positions, dtype=np.float64)
        if q.shape != (7,) or not np.isfinite(q).all():
            raise ValueError(f"joint target must be 7 finite angles in rad, got {q}")
        lo = FR3_JOINT_LOWER_RAD + self.limits.joint_margin_rad
        hi = FR3_JOINT_UPPER_RAD - self.limits.joint_margin_rad
        bad = np.flatnonzero((q < lo) | (q > hi))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"joint {i + 1} target {q[i]:.4f} rad is outside [{lo[i]:.4f}, {hi[i]:.4f}] rad"
            )
        return q

    def move_joints(self, joint_positions: np.ndarray, *, blocking: bool = True) -> None:
        import franky

        q = self.check_joint_target(joint_positions)
        robot = self._require()
        self._surface_motion_error()
        if self._tracker is not None:
            self.stop()  # the tracker never ends by itself; the signal type must not change
        elif robot.is_in_control:
            # A streamed Cartesian motion ends on its own shortly.
            self.wait_for_motion(timeout_s=5.0)
        try:
            robot.move(franky.JointMotion(q, franky.ReferenceType.Absolute), asynchronous=True)
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("starting a joint motion", exc) from exc
        if blocking:
            self.wait_for_motion(timeout_s=60.0)

    # ---------------------------------------------------------------- gripper

    def set_gripper(self, *, closed: bool) -> None:
        """Open, or grasp with ``grasp_force_n``; only sends when the command changes."""
        if self._gripper is not None:
            self._gripper.command(
                closed=closed, speed_m_s=self.gripper_speed_m_s, grasp_force_n=self.grasp_force_n
            )

    def wait_for_gripper(self, timeout_s: float = 5.0) -> bool:
        """Block until the last gripper command finished; False on timeout."""
        return self._gripper is None or self._gripper.wait(timeout_s)

    # ---------------------------------------------------------------- stop / recover

    def stop(self) -> None:
        """Decelerate the running motion within the dynamics limits and hold the pose."""
        import franky

        robot = self._require()
        if not robot.is_in_control:
            self._surface_motion_error()
            return
        signal = robot.current_control_signal_type
        if signal == franky.ControlSignalType.Torques:
            stop_motion = franky.TorqueStopMotion()  # ramps into damping, then finishes
        elif signal == franky.ControlSignalType.JointPositions:
            stop_motion = franky.JointStopMotion()
        else:
            stop_motion = franky.CartesianStopMotion()
        self._tracker = None
        try:
            robot.move(stop_motion, asynchronous=True)
        except Exception as exc:  # noqa: BLE001
            logger.warning("stop motion rejected (%s); stopping hard", exc)
            try:
                robot.stop()
            except Exception as stop_exc:  # noqa: BLE001
                raise self._wrap("stopping", stop_exc) from stop_exc
        self.wait_for_motion(timeout_s=5.0)

    def recover(self) -> None:
        """Clear a reflex with libfranka's automatic error recovery (or reconnect if lost)."""
        self._tracker = None
        if self._lost_connection:
            logger.warning("franka at %s: reconnecting after a lost connection", self.host)
            self._release_gripper()
            self._robot = None
            self.connect()
            return
        robot = self._require()
        try:
            robot.join_motion(timeout=1.0)
        except Exception as exc:  # noqa: BLE001 - the error being recovered from
            logger.info("franka at %s: clearing motion error: %s", self.host, exc)
        try:
            robot.recover_from_errors()
        except Exception as exc:  # noqa: BLE001
            raise self._wrap("error recovery", exc) from exc
        # The recovery reply can arrive before the state shows it: give the state a moment.
        deadline = time.monotonic() + 1.0
        while robot.has_errors:
            if time.monotonic() > deadline:
                raise FrankaError(
                    f"franka at {self.host}: automatic error recovery did not clear the errors "
                    f"{robot.state.current_errors}; manual recovery (Desk) may be required"
                )
            time.sleep(0.01)
        logger.info("franka at %s: recovered", self.host)
