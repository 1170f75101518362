"""Run the franky-sim FR3 server (MuJoCo, libfranka wire protocol) as a loopback subprocess.

Why a subprocess: the simulator steps MuJoCo at 1 kHz in a Python loop; inside the client's
process it would compete for the GIL with franky's control thread and the caller. Why our own
entry point instead of ``franky_sim.run_server``: that one may bind the state/command UDP
sockets on every interface and has no reflexes. Here every socket is pinned to one loopback
address, the server runs headless, prints ``READY <host>`` once it listens, and can optionally
enforce *virtual walls*: when the measured TCP leaves a box while moving outward, the robot
goes into a ``cartesian_position_limits_violation`` reflex exactly as the real controller
reports it over the protocol (Move aborted with kReflexAborted, robot mode Reflex, errors set)
until libfranka's automatic error recovery clears it. franky-sim itself simulates no reflex
or error state at all; the walls are the only fault it can show, and only through this module.

Use :class:`FrankySimServer` (a context manager) from tests, benchmarks and the demo::

    with FrankySimServer() as sim, FrankaRobot(host=sim.host, enforce_realtime=False) as arm:
        ...
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import numpy as np

logger = logging.getLogger(__name__)

ROBOT_PORT = 1337  # fixed by libfranka; the gripper uses 1338 on the same address
GRIPPER_PORT = 1338
READY_LINE = "READY"
# libfranka's Errors bit for leaving the configured Cartesian safety volume.
_CARTESIAN_POSITION_LIMITS_VIOLATION = 1
_N_ERRORS = 41
_WALL_TOLERANCE_M = 1e-3

Box = tuple[tuple[float, float, float], tuple[float, float, float]]


class SimServerError(RuntimeError):
    """The simulator subprocess could not be started or died."""


def _require_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"franky-sim must listen on a loopback address, got {host!r}")


def _port_free(host: str, port: int) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


class FrankySimServer:
    """Start franky-sim in a subprocess on a loopback address; always stop it on exit.

    ``virtual_walls_m``: optional ((x, y, z) min, (x, y, z) max) box in the base frame; leaving
    it while moving outward triggers a reflex (see module docstring). libfranka fixes the ports
    (1337/1338), so one server per address: ``port_wait_s`` waits for another one to exit.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        virtual_walls_m: Box | None = None,
        initial_joint_positions: Sequence[float] | None = None,
        startup_timeout_s: float = 30.0,
        port_wait_s: float = 0.0,
    ) -> None:
        _require_loopback(host)
        self.host = host
        self.virtual_walls_m = virtual_walls_m
        self.initial_joint_positions = initial_joint_positions
        self.startup_timeout_s = startup_timeout_s
        self.port_wait_s = port_wait_s  # wait this long for another server to free the port
        self._process: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=50)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-m", __name__, "--host", self.host]
        cmd += ["--parent-pid", str(os.getpid())]
        if self.virtual_walls_m is not None:
            lo, hi = self.virtual_walls_m
            cmd += ["--virtual-walls", ",".join(f"{v:.6f}" for v in (*lo, *hi))]
        if self.initial_joint_positions is not None:
            cmd += ["--initial-joints", ",".join(f"{v:.6f}" for v in self.initial_joint_positions)]
        return cmd

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            line = line.rstrip()
            self._output.append(line)
            if line.startswith(READY_LINE):
                self._ready.set()
            logger.debug("franky-sim: %s", line)

    def start(self) -> None:
        if self.is_running:
            return
        deadline_s = time.monotonic() + self.port_wait_s
        for port in (ROBOT_PORT, GRIPPER_PORT):
            while not _port_free(self.host, port) and time.monotonic() < deadline_s:
                time.sleep(0.2)
            if not _port_free(self.host, port):
                raise SimServerError(
                    f"{self.host}:{port} is already in use (another franky-sim or robot "
                    "server?); stop it or use another loopback address"
                )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DISPLAY", None)  # headless: never open a viewer window
        self._ready.clear()
        self._process = subprocess.Popen(
            self._command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._ready.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self._output)
                self.stop()
                raise SimServerError(
                    f"franky-sim on {self.host} did not become ready within "
                    f"{self.startup_timeout_s:.0f} s; its output:\n{tail}"
                )
        logger.info("franky-sim listening on %s:%d (pid %d)", self.host, ROBOT_PORT, self.pid)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise SimServerError("franky-sim is not running")
        return self._process.pid

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate (then kill) the subprocess; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        if self._reader is not None:
            self._reader.join(timeout_s)
        if process.stdout is not None:
            process.stdout.close()

    def output_tail(self) -> str:
        """The last lines the server printed (for error messages)."""
        return "\n".join(self._output)

    def __enter__(self) -> FrankySimServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ---------------------------------------------------------------- the server process itself


def _pin_wildcard_binds(host: str) -> None:
    """franky-sim binds its UDP sockets to 0.0.0.0; rebind every wildcard address to ``host``.

    Only ever called inside the server subprocess, whose sockets are all franky-sim's.
    """
    original_bind = socket.socket.bind

    def bind(self: socket.socket, address: tuple[str, int]) -> None:
        if isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
            address = (host, *address[1:])
        original_bind(self, address)

    socket.socket.bind = bind  # type: ignore[method-assign]


def _make_servers(walls: Box | None):  # noqa: ANN202 - franky_sim is imported lazily
    """Build the robot-server and simulation-server classes (franky_sim imported here only)."""
    import franky_sim
    from franky_sim.franka_robot_protocol import (
        AutomaticErrorRecoveryCommand,
        AutomaticErrorRecoveryStatus,
        MoveStatus,
        RobotCommand,
        RobotMode,
    )
    from franky_sim.franka_server import BaseCommand

    class RecoveryCommand(AutomaticErrorRecoveryCommand):
        def handle(self, server) -> None:  # noqa: ANN001
            server.clear_reflex()
            self.reply(AutomaticErrorRecoveryStatus.kSuccess)

    class WalledRobotServer(franky_sim.FrankaRobotServer):
        """FrankaRobotServer plus a virtual-wall reflex (libfranka semantics)."""

        def __init__(self, robot, hostname_candidates) -> None:  # noqa: ANN001
            super().__init__(robot, hostname_candidates)
            self._walls = None if walls is None else (np.array(walls[0]), np.array(walls[1]))
            self._in_reflex = False
            self._reflex_reason = (False,) * _N_ERRORS
            self._allowed_outside_m = 0.0
            self._reflex_hold_q: tuple[float, ...] | None = None
            # franky-sim keeps its command table private; swap in the recovery that clears us.
            self._FrankaServer__command_class_map[RobotCommand.kAutomaticErrorRecovery] = (
                RecoveryCommand
            )

        def start_motion(self, controller_mode, motion_generator_mode, motion_id) -> None:  # noqa: ANN001
            if self._in_reflex:
                raise RuntimeError("robot is in reflex; automatic error recovery required")
            super().start_motion(controller_mode, motion_generator_mode, motion_id)

        def _post_process_commands(self) -> None:
            if self._reflex_hold_q is not None:
                # Late UDP commands from the client may re-arm the hold at the commanded
                # pose; a reflex brakes where the arm was when it fired.
                self._FrankaRobotServer__holding_q = self._reflex_hold_q
            super()._post_process_commands()
            if self._walls is None:
                return
            q = np.asarray(self.robot.inner_state.q)
            tcp_m = self.robot.kinematics(q).translation
            lo, hi = self._walls
            outside_m = float(np.linalg.norm(np.maximum(lo - tcp_m, 0) + np.maximum(tcp_m - hi, 0)))
            # Only motions can violate the walls: while idle (or in reflex) the reference is
            # wherever the arm rests. During a motion, moving back in is allowed; going further
            # out than the closest point reached since (plus a tolerance) is not.
            if not self.current_motion_id or self._in_reflex:
                self._allowed_outside_m = outside_m
                return
            self._allowed_outside_m = min(self._allowed_outside_m, outside_m)
            # Crossing in from inside: 1 mm. A motion that starts outside (after a reflex) may
            # sag up to 1 cm further while its controller takes over, before it heads back in.
            tolerance_m = _WALL_TOLERANCE_M if self._allowed_outside_m == 0 else 0.01
            if outside_m > self._allowed_outside_m + tolerance_m:
                self._trigger_reflex(tcp_m)

        def _trigger_reflex(self, tcp_m: np.ndarray) -> None:
            logging.getLogger(__name__).warning("virtual wall reflex at TCP %s", tcp_m)
            reason = [False] * _N_ERRORS
            reason[_CARTESIAN_POSITION_LIMITS_VIOLATION] = True
            self._reflex_reason = tuple(reason)
            self._in_reflex = True
            motion_id = self.current_motion_id
            self.stop_motion(send_preemption_signal=False)
            self._reflex_hold_q = tuple(self.robot.inner_state.q)
            BaseCommand.send_response(
                self._tcp_socket, RobotCommand.kMove, motion_id, MoveStatus.kReflexAborted
            )
            self.reset_current_motion_id()

        def clear_reflex(self) -> None:
            self._in_reflex = False
            self._reflex_hold_q = None

        @property
        def robot_state(self):  # noqa: ANN202
            state = super().robot_state
            if self._in_reflex:
                return state.replace(
                    robot_mode=RobotMode.kReflex,
                    errors=self._reflex_reason,
                    reflex_reason=self._reflex_reason,
                )
            return state.replace(reflex_reason=self._reflex_reason)

    class LoopbackSimulationServer(franky_sim.SimulationServer):
        def init(self) -> None:
            for robot in self.sim.robots:
                server = WalledRobotServer(robot, list(self._hostname_candidates))
                server.init()
                self.robot_servers.append(server)
            self.sim.start()

    return LoopbackSimulationServer


def _exit_with_parent(parent_pid: int, server: object) -> None:
    """A crashed client must not leave the server holding the fixed ports."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        server.running = False  # type: ignore[attr-defined]

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _floats(text: str, n: int, what: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"{what} needs {n} comma-separated numbers, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--virtual-walls", help="xmin,ymin,zmin,xmax,ymax,zmax in metres")
    parser.add_argument("--initial-joints", help="seven joint angles in radians")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)
    _require_loopback(args.host)
    walls = None
    if args.virtual_walls:
        v = _floats(args.virtual_walls, 6, "--virtual-walls")
        walls = (v[:3], v[3:])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _pin_wildcard_binds(args.host)

    import signal

    from franky_sim.constants import DEFAULT_INITIAL_JOINT_POS
    from franky_sim.mujoco_simulator import MujocoSimulator

    initial_q = DEFAULT_INITIAL_JOINT_POS
    if args.initial_joints:
        initial_q = _floats(args.initial_joints, 7, "--initial-joints")
    server_class = _make_servers(walls)
    with MujocoSimulator(enable_visualization=False) as sim:
        sim.add_robot(initial_q=initial_q)
        with server_class(sim, hostname_candidates=[args.host]) as server:

            def _stop(signum: int, frame: object) -> None:
                server.running = False

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            if args.parent_pid:
                _exit_with_parent(args.parent_pid, server)
            print(f"{READY_LINE} {args.host}", flush=True)
            server.run_forever()


if __name__ == "__main__":
    main()
