"""The lockstep simulated FR3: the Robot interface over MuJoCo, stepped as fast as the CPU allows.

Control: differential IK at the control rate. Each period the TCP pose error (position, and
rotation vector in the base frame) goes through a damped least-squares Jacobian inverse plus a
null-space pull towards the home posture, and ``q + gain * dq`` becomes the set-point of the
FR3's joint position servos (gravity compensated, see ``scene.py``). Because the set-point is
anchored at the *measured* joints, contact forces stay bounded by the tracking error: the
robot behaves like the real arm's Cartesian impedance controller, not a rigid kinematic one.

Time: ``read_state().timestamp_s`` is simulated time, the station clock of the simulator.
Nothing here sleeps; ``advance`` steps the physics and returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mujoco
import numpy as np

from robot_learning.geometry import mat_from_quat_xyzw, orientation_error, quat_xyzw_from_mat
from robot_learning.hardware.robot import CartesianTarget, Robot, RobotReflexError, RobotState
from robot_learning.limits import RobotLimits, load_limits
from robot_learning.sim import scene

logger = logging.getLogger(__name__)


class SimReflexError(RobotReflexError):
    """The simulated arm stopped on a collision reflex; call ``recover()`` to move again."""


@dataclass(frozen=True)
class SimServo:
    """How the simulated arm tracks targets and when its collision reflex trips. Where
    targets may go is the robot's limits file (``robot_learning/limits/fr3_sim.yaml``)."""

    max_position_error_m: float = 0.06  # error fed to the IK per period is clipped to this
    max_rotation_error_rad: float = 0.5
    # Net external contact force that stops the arm. The joint servos are stiff (about 50 kN/m
    # at the TCP), so pushing and grasping alone reach 100-250 N: this guards gross collisions.
    reflex_force_n: float = 400.0
    joint_move_speed_rad_s: float = 1.0  # move_joints interpolation speed

    def __post_init__(self) -> None:
        if (
            min(
                self.max_position_error_m,
                self.max_rotation_error_rad,
                self.reflex_force_n,
                self.joint_move_speed_rad_s,
            )
            <= 0
        ):
            raise ValueError(f"SimServo values must be positive, got {self}")


class SimRobot(Robot):
    """The FR3 in a workcell's MuJoCo model; the workcell owns the model and data."""

    name = "fr3_sim"

    def __init__(
        self,
        *,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        control_period_s: float = 0.01,
        limits: RobotLimits | None = None,
        servo: SimServo | None = None,
        ik_gain: float = 3.0,
        ik_damping: float = 0.05,
        nullspace_gain: float = 0.5,
    ) -> None:
        substeps = control_period_s / model.opt.timestep
        if control_period_s <= 0 or abs(substeps - round(substeps)) > 1e-6:
            raise ValueError(
                f"control_period_s={control_period_s} must be a positive multiple of the "
                f"physics timestep {model.opt.timestep} s"
            )
        self._model, self._data = model, data
        self.control_period_s = control_period_s
        self._substeps = int(round(substeps))
        self.limits = limits or load_limits("fr3_sim")
        self.servo = servo or SimServo()
        self._ik_gain, self._ik_damping, self._nullspace_gain = ik_gain, ik_damping, nullspace_gain
        joint_ids = [model.joint(n).id for n in scene.ARM_JOINTS]
        self._qpos_adr = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self._dof_adr = np.array([model.jnt_dofadr[j] for j in joint_ids])
        self._joint_range = model.jnt_range[joint_ids].copy()
        self._arm_actuators = np.array([model.actuator(n).id for n in scene.ARM_JOINTS])
        self._hand_actuator = model.actuator(scene.HAND_ACTUATOR).id
        self._finger_adr = np.array(
            [model.jnt_qposadr[model.joint(n).id] for n in scene.FINGER_JOINTS]
        )
        self._tcp_site = model.site(scene.TCP_SITE).id
        self._home = np.array(scene.HOME_JOINTS_RAD)
        self._robot_geoms = self._robot_geom_mask()
        self._jacp, self._jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
        self._connected = False
        self._target: CartesianTarget | None = None
        self._joint_goal: np.ndarray | None = None
        self._gripper_closed = False
        self._error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def reset(
        self, joint_positions: np.ndarray | None = None, *, gripper_closed: bool = False
    ) -> None:
        """Place the arm (no motion) and hold there; the workcell calls this on reset."""
        q = self._home if joint_positions is None else np.asarray(joint_positions, dtype=float)
        self._data.qpos[self._qpos_adr] = q
        self._data.qvel[self._dof_adr] = 0.0
        width = 0.0 if gripper_closed else scene.GRIPPER_MAX_WIDTH_M
        self._data.qpos[self._finger_adr] = width / 2.0
        self._data.ctrl[self._arm_actuators] = q
        self._gripper_closed = gripper_closed
        self._data.ctrl[self._hand_actuator] = width
        self._target, self._joint_goal, self._error = None, q.copy(), None

    # -- state -------------------------------------------------------------------------------
    @property
    def error(self) -> str | None:
        """Why the arm is stopped, or None when it can move."""
        return self._error

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and rotation matrix (3, 3) in the base frame, current physics state."""
        return (
            self._data.site_xpos[self._tcp_site].copy(),
            self._data.site_xmat[self._tcp_site].reshape(3, 3).copy(),
        )

    def read_state(self) -> RobotState:
        position, mat = self.tcp_pose()
        return RobotState(
            timestamp_s=float(self._data.time),
            joint_positions=self._data.qpos[self._qpos_adr].copy(),
            joint_velocities=self._data.qvel[self._dof_adr].copy(),
            ee_position=position,
            ee_quaternion=quat_xyzw_from_mat(mat),
            gripper_width_m=float(self._data.qpos[self._finger_adr].sum()),
        )

    # -- commands ----------------------------------------------------------------------------
    def send_cartesian_target(self, target: CartesianTarget) -> CartesianTarget:
        self._raise_if_stopped()
        position = np.asarray(target.position, dtype=np.float64)
        quaternion = np.asarray(target.quaternion, dtype=np.float64)
        if position.shape != (3,) or quaternion.shape != (4,):
            raise ValueError(
                f"CartesianTarget needs position (3,) and quaternion (4,), "
                f"got {position.shape} and {quaternion.shape}"
            )
        norm = np.linalg.norm(quaternion)
        if not (np.all(np.isfinite(position)) and np.isfinite(norm) and norm > 1e-6):
            raise ValueError(f"CartesianTarget is not finite: {target.as_vector()}")
        clamped = CartesianTarget(
            position=np.clip(position, self.limits.workspace_min_m, self.limits.workspace_max_m),
            quaternion=quaternion / norm,
            gripper_closed=target.gripper_closed,
            timestamp_s=target.timestamp_s,
        )
        self._target, self._joint_goal = clamped, None
        self.set_gripper(closed=clamped.gripper_closed)
        return clamped

    def move_joints(self, joint_positions: np.ndarray, *, blocking: bool = True) -> None:
        self._raise_if_stopped()
        goal = np.asarray(joint_positions, dtype=np.float64)
        if goal.shape != (7,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"move_joints needs 7 finite joint angles (rad), got {goal}")
        lo, hi = self._joint_range[:, 0], self._joint_range[:, 1]
        if np.any(goal < lo) or np.any(goal > hi):
            raise ValueError(f"joint goal {goal} outside the FR3 joint limits [{lo}, {hi}]")
        self._target, self._joint_goal = None, goal
        if not blocking:
            return
        timeout_s = 2.0 + float(np.max(np.abs(goal - self._data.qpos[self._qpos_adr])))
        timeout_s /= self.servo.joint_move_speed_rad_s
        elapsed_s = 0.0
        while np.max(np.abs(goal - self._data.qpos[self._qpos_adr])) > 2e-3:
            if elapsed_s > timeout_s:
                raise TimeoutError(f"move_joints did not reach {goal} within {timeout_s:.1f} s")
            self.advance()
            self._raise_if_stopped()
            elapsed_s += self.control_period_s

    def set_gripper(self, *, closed: bool) -> None:
        self._gripper_closed = bool(closed)
        self._data.ctrl[self._hand_actuator] = 0.0 if closed else scene.GRIPPER_MAX_WIDTH_M

    def stop(self) -> None:
        """Hold the current joint configuration (drops any Cartesian target)."""
        self._target, self._joint_goal = None, self._data.qpos[self._qpos_adr].copy()
        self._data.ctrl[self._arm_actuators] = self._joint_goal

    def recover(self) -> None:
        if self._error is not None:
            logger.info("recovering from: %s", self._error)
        self._error = None
        self.stop()

    # -- lockstep ----------------------------------------------------------------------------
    def advance(self) -> None:
        """One control period: compute the servo set-points, then step the physics."""
        if self._error is None:
            self._data.ctrl[self._arm_actuators] = self._joint_setpoint()
        for _ in range(self._substeps):
            mujoco.mj_step(self._model, self._data)
        # mj_step leaves positions one step stale; refresh them for read_state and the next IK.
        mujoco.mj_kinematics(self._model, self._data)
        mujoco.mj_comPos(self._model, self._data)
        self._check_reflex()

    def _joint_setpoint(self) -> np.ndarray:
        q = self._data.qpos[self._qpos_adr]
        if self._target is not None:
            return self._ik_setpoint(q)
        # Joint mode: walk the servo set-point towards the goal at a bounded speed.
        previous = self._data.ctrl[self._arm_actuators]
        goal = self._joint_goal if self._joint_goal is not None else previous
        step = self.servo.joint_move_speed_rad_s * self.control_period_s
        return previous + np.clip(goal - previous, -step, step)

    def _ik_setpoint(self, q: np.ndarray) -> np.ndarray:
        position, mat = self.tcp_pose()
        target_mat = mat_from_quat_xyzw(self._target.quaternion)
        err_pos = self._target.position - position
        err_rot = orientation_error(target_mat, mat)
        err_pos *= min(1.0, self.servo.max_position_error_m / (np.linalg.norm(err_pos) + 1e-12))
        err_rot *= min(1.0, self.servo.max_rotation_error_rad / (np.linalg.norm(err_rot) + 1e-12))
        mujoco.mj_jacSite(self._model, self._data, self._jacp, self._jacr, self._tcp_site)
        jac = np.vstack([self._jacp[:, self._dof_adr], self._jacr[:, self._dof_adr]])
        jjt = jac @ jac.T + (self._ik_damping**2) * np.eye(6)
        jac_pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
        dq = jac_pinv @ np.concatenate([err_pos, err_rot])
        # Exact projector (undamped), so the posture pull never leaks into the TCP pose.
        nullspace = np.eye(7) - jac.T @ np.linalg.solve(jac @ jac.T + 1e-9 * np.eye(6), jac)
        dq += nullspace @ (self._nullspace_gain * (self._home - q))
        return np.clip(q + self._ik_gain * dq, self._joint_range[:, 0], self._joint_range[:, 1])

    # -- safety ------------------------------------------------------------------------------
    def _robot_geom_mask(self) -> np.ndarray:
        """Geoms belonging to the arm, hand and fingers."""
        model = self._model
        root = model.body_rootid[model.body("fr3_link1").id]
        return model.body_rootid[model.geom_bodyid] == root

    def _check_reflex(self) -> None:
        """Stop like the real arm's collision reflex when the net contact force is too high.

        The net force on the robot, not per contact: a firm grasp squeezes with 70 N per
        finger but those forces cancel, as they do in the real arm's external force estimate.
        """
        data = self._data
        if self._error is not None or data.ncon == 0:
            return
        on_robot_1 = self._robot_geoms[data.contact.geom1[: data.ncon]]
        on_robot_2 = self._robot_geoms[data.contact.geom2[: data.ncon]]
        net_force = np.zeros(3)
        wrench = np.zeros(6)
        for i in np.flatnonzero(on_robot_1 ^ on_robot_2):
            mujoco.mj_contactForce(self._model, data, int(i), wrench)
            force_world = data.contact.frame[i].reshape(3, 3).T @ wrench[:3]  # on geom2
            net_force += force_world if on_robot_2[i] else -force_world
        magnitude = float(np.linalg.norm(net_force))
        if magnitude > self.servo.reflex_force_n:
            self._error = (
                f"collision reflex: {magnitude:.0f} N external force on the arm "
                f"(limit {self.servo.reflex_force_n:.0f} N) at t={data.time:.3f} s"
            )
            logger.warning(self._error)
            self.stop()

    def _raise_if_stopped(self) -> None:
        if self._error is not None:
            raise SimReflexError(f"{self.name}: {self._error}; call recover() first")
