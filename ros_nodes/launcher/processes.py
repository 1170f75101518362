"""Running a launch plan: one process per node, its output, its death, its shutdown.

Behaves like ``ros2 launch``: each node gets ``--ros-args -r __node:=NAME -r __ns:=/NS
--params-file FILE -r FROM:=TO`` (parameters written in the ROS 2 parameter-file format);
``output: screen`` prints a node's lines prefixed with ``[name]``, ``log`` writes them to
the log directory and shows stderr, ``both`` does both. A node that exits is reported with
its name and exit code and respawned if its ``respawn`` says so. Shutdown (Ctrl-C, SIGTERM,
or every node gone) sends SIGINT, then SIGTERM after ``sigterm_timeout_s``, then SIGKILL
after ``sigkill_timeout_s``, as launch's defaults do.

Children run in their own process group, so a terminal's Ctrl-C reaches only the launcher,
which then asks each node once; and they are told to die with the launcher (Linux
PR_SET_PDEATHSIG), so a killed launcher never leaves nodes running.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from ros_nodes.launcher.description import NodeSpec

log = logging.getLogger("launch")

_PR_SET_PDEATHSIG = 1
_POLL_S = 0.05


def node_command(spec: NodeSpec, params_dir: Path) -> list[str]:
    """The argv ``ros2 launch`` would run for this node (launch_ros's Node action)."""
    cmd = [*spec.executable.command(), *spec.arguments, "--ros-args", *spec.ros_arguments]
    if spec.name is not None:
        cmd += ["-r", f"__node:={spec.name}"]
    if spec.namespace is not None:
        cmd += ["-r", f"__ns:={spec.namespace}"]
    for i, params in enumerate(spec.parameters):
        if isinstance(params, Path):
            cmd += ["--params-file", str(params)]
            continue
        path = params_dir / f"{spec.label}_{i}.yaml"
        document = {spec.full_name or "/**": {"ros__parameters": params}}
        path.write_text(yaml.safe_dump(document, default_flow_style=False))
        cmd += ["--params-file", str(path)]
    for source, target in spec.remaps:
        cmd += ["-r", f"{source}:={target}"]
    return cmd


@dataclass
class _Running:
    spec: NodeSpec
    label: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    readers: list[threading.Thread] = field(default_factory=list)
    respawn_at: float | None = None
    starts: int = 0


class Launcher:
    """Start every node of a plan and supervise them until shutdown; ``run()`` -> exit code."""

    def __init__(
        self,
        nodes: list[NodeSpec],
        *,
        log_dir: Path | None = None,
        sigterm_timeout_s: float = 5.0,
        sigkill_timeout_s: float = 5.0,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.sigterm_timeout_s = sigterm_timeout_s
        self.sigkill_timeout_s = sigkill_timeout_s
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self._write_lock = threading.Lock()
        self._shutdown_reason: str | None = None
        self._params_dir = Path(tempfile.mkdtemp(prefix="launch_params_"))
        self._log_dir = log_dir
        self._failures: list[str] = []
        labels = _unique_labels([n.label for n in nodes])
        self._nodes = [
            _Running(n, label, node_command(n, self._params_dir))
            for n, label in zip(nodes, labels, strict=True)
        ]

    def commands(self) -> list[tuple[str, list[str]]]:
        """(label, argv) of every node, as they will be started."""
        return [(n.label, n.command) for n in self._nodes]

    # --------------------------------------------------------------------------- running
    def run(self) -> int:
        previous = {
            s: signal.signal(s, self._on_signal)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            for node in self._nodes:
                self._start(node)
            while self._shutdown_reason is None:
                self._reap()
                if all(n.process is None and n.respawn_at is None for n in self._nodes):
                    self._announce("all nodes have exited")
                    break
                time.sleep(_POLL_S)
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for path in self._params_dir.iterdir():
                path.unlink()
            self._params_dir.rmdir()
        if self._failures:
            self._announce("nodes that failed: " + "; ".join(self._failures))
            return 1
        return 0

    def request_shutdown(self, reason: str) -> None:
        if self._shutdown_reason is None:
            self._shutdown_reason = reason

    def _on_signal(self, signum: int, frame: object) -> None:
        self.request_shutdown(signal.Signals(signum).name)

    def _start(self, node: _Running) -> None:
        node.starts += 1
        node.respawn_at = None
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        node.process = subprocess.Popen(
            node.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            process_group=0,
            preexec_fn=_die_with_parent,
        )
        what = "respawned" if node.starts > 1 else "started"
        self._announce(
            f"{what} {node.label!r} ({node.spec.executable.name}) [pid {node.process.pid}]"
        )
        log_file = self._log_file(node)
        output = node.spec.output
        node.readers = [
            threading.Thread(
                target=self._pump,
                daemon=True,
                args=(
                    node.process.stdout,
                    node.label,
                    self._stdout if output != "log" else None,
                    log_file,
                ),
            ),
            threading.Thread(
                target=self._pump,
                daemon=True,
                args=(node.process.stderr, node.label, self._stderr, log_file),
            ),
        ]
        for reader in node.readers:
            reader.start()

    def _log_file(self, node: _Running) -> Path | None:
        if node.spec.output == "screen":
            return None
        if self._log_dir is None:
            base = Path(os.environ.get("ROS_LOG_DIR", Path.home() / ".ros" / "log"))
            self._log_dir = base / time.strftime(f"rl_launch_%Y-%m-%d-%H-%M-%S_{os.getpid()}")
            self._announce(f"node logs in {self._log_dir}")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self._log_dir / f"{node.label}.log"

    def _pump(
        self, pipe: IO[bytes], label: str, screen: IO[str] | None, log_file: Path | None
    ) -> None:
        sink = open(log_file, "a") if log_file is not None else None  # noqa: SIM115
        try:
            for raw in iter(pipe.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                if sink is not None:
                    sink.write(line + "\n")
                    sink.flush()
                if screen is not None:
                    with self._write_lock:
                        screen.write(f"[{label}] {line}\n")
                        screen.flush()
        finally:
            pipe.close()
            if sink is not None:
                sink.close()

    def _reap(self) -> None:
        now = time.monotonic()
        for node in self._nodes:
            if node.process is not None and node.process.poll() is not None:
                code = self._finish(node)
                if node.spec.respawn:
                    node.respawn_at = now + node.spec.respawn_delay_s
                    self._announce(
                        f"node {node.label!r} exited with code {code}; respawning "
                        f"in {node.spec.respawn_delay_s:g} s",
                        error=code != 0,
                    )
                else:
                    self._announce(
                        f"node {node.label!r} ({node.spec.executable.name}) exited "
                        f"with code {code}",
                        error=code != 0,
                    )
                    if code != 0:
                        self._failures.append(f"{node.label} exit code {code}")
            if node.respawn_at is not None and now >= node.respawn_at:
                self._start(node)

    def _finish(self, node: _Running) -> int:
        assert node.process is not None
        code = node.process.wait()
        for reader in node.readers:
            reader.join(timeout=2.0)
        node.process = None
        return code

    def _stop_all(self) -> None:
        for node in self._nodes:
            node.respawn_at = None
        alive = [n for n in self._nodes if n.process is not None]
        if not alive:
            return
        self._announce(
            f"shutting down ({self._shutdown_reason or 'all nodes done'}): "
            f"SIGINT to {', '.join(n.label for n in alive)}"
        )
        escalation = (
            (signal.SIGINT, self.sigterm_timeout_s),
            (signal.SIGTERM, self.sigkill_timeout_s),
            (signal.SIGKILL, 5.0),
        )
        for sig, timeout_s in escalation:
            if sig != signal.SIGINT:
                self._announce(
                    f"{', '.join(n.label for n in alive)} still running: sending {sig.name}",
                    error=True,
                )
            for node in alive:
                _signal(node, sig)
            deadline = time.monotonic() + timeout_s
            while alive and time.monotonic() < deadline:
                time.sleep(_POLL_S)
                alive = [n for n in alive if n.process is not None and n.process.poll() is None]
            for node in [n for n in self._nodes if n.process is not None and n not in alive]:
                code = self._finish(node)
                self._announce(f"node {node.label!r} stopped (exit code {code})")
            if not alive:
                return

    def _announce(self, message: str, *, error: bool = False) -> None:
        with self._write_lock:
            self._stderr.write(f"[{'ERROR' if error else 'INFO'}] [launch]: {message}\n")
            self._stderr.flush()


def _signal(node: _Running, sig: signal.Signals) -> None:
    if node.process is not None and node.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            node.process.send_signal(sig)


def _unique_labels(labels: list[str]) -> list[str]:
    """Two nodes with the same name get ``-1``, ``-2`` suffixes in output and log files."""
    counts = {label: labels.count(label) for label in labels}
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        if counts[label] == 1:
            out.append(label)
            continue
        seen[label] = seen.get(label, 0) + 1
        out.append(f"{label}-{seen[label]}")
    return out


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)  # loaded here: no dlopen between fork and exec
    except OSError:
        return None


_LIBC = _load_libc()


def _die_with_parent() -> None:
    """In the child before exec: receive SIGTERM when the launcher dies, and take SIGINT
    (the launcher's polite stop) even when the launcher itself was started with it ignored,
    as a shell does for background jobs: an ignored signal would be inherited across exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
