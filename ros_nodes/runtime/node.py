"""The node API every ros_nodes node is written against; backends fill in the transport.

A node declares its parameters (with descriptions) in its constructor, creates publishers,
subscriptions and timers, and runs until SIGINT/SIGTERM. Name, namespace, remaps and
parameter values come from the standard ``--ros-args`` command line, so ``ros2 launch`` and
``rl launch`` start it the same way. Stamps are on the station clock: wall time
(``time.time()``, what ROS 2 calls system time), shared by every process on the machine.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ros_nodes.runtime.args import RosArgs
from ros_nodes.runtime.qos import DEFAULT, QoSProfile

M = TypeVar("M")


class ParameterError(ValueError):
    """A parameter override of the wrong type, or a parameter declared twice."""


@dataclass(frozen=True)
class Parameter:
    name: str
    value: Any
    description: str


@dataclass(frozen=True)
class Endpoint:
    """A matched remote writer: its participant's GUID and, when it said, its node and pid."""

    participant: str
    node: str | None = None
    pid: int | None = None

    def __str__(self) -> str:
        who = f"participant {self.participant}"
        if self.node:
            who += f" (node {self.node}" + (f", pid {self.pid}" if self.pid else "") + ")"
        return who


class Publisher(ABC, Generic[M]):
    topic: str

    @abstractmethod
    def publish(self, msg: M) -> None: ...

    @abstractmethod
    def subscription_count(self) -> int: ...


class Subscription(ABC, Generic[M]):
    topic: str

    @abstractmethod
    def publishers(self) -> list[Endpoint]:
        """The writers currently matched to this reader (the command guard's question)."""


@dataclass
class Timer:
    period_s: float
    callback: Callable[[], None]
    next_s: float
    cancelled: bool = False
    overruns: int = 0

    def cancel(self) -> None:
        self.cancelled = True


class Node(ABC):
    """One ROS 2 node in this process. Use ``ros_nodes.runtime.create_node`` to get one."""

    def __init__(self, default_name: str, ros_args: RosArgs) -> None:
        self.name = ros_args.node_name or default_name
        self.namespace = ros_args.namespace or "/"
        self._remaps = dict(ros_args.remaps)
        self._overrides = ros_args.parameter_overrides(self.fqn)
        self._parameters: dict[str, Parameter] = {}
        self._shutdown = threading.Event()
        self._on_shutdown: list[Callable[[], None]] = []
        self.log = logging.getLogger(self.fqn)
        if ros_args.log_level:
            self.log.setLevel(ros_args.log_level.upper())

    @property
    def fqn(self) -> str:
        """Fully qualified node name, ``/ns/name``."""
        return f"{self.namespace.rstrip('/')}/{self.name}"

    # -- parameters ----------------------------------------------------------------------
    def declare_parameter(self, name: str, default: Any, description: str) -> Any:
        """Declare ``name`` and return its value: the command line's override or ``default``.

        The override must have the default's type (an int where a float is declared is
        accepted), so a typo in a launch file is an error at startup, not a crash later.
        """
        if name in self._parameters:
            raise ParameterError(f"node {self.fqn}: parameter {name!r} declared twice")
        value = self._overrides.get(name, default)
        value = _checked_type(self.fqn, name, value, default)
        self._parameters[name] = Parameter(name, value, description)
        return value

    @property
    def parameters(self) -> dict[str, Parameter]:
        return dict(self._parameters)

    def warn_undeclared_overrides(self) -> None:
        unknown = sorted(set(self._overrides) - set(self._parameters))
        if unknown:
            self.log.warning(
                "parameters given but not declared by %s (ignored): %s; declared: %s",
                self.fqn,
                ", ".join(unknown),
                ", ".join(self._parameters),
            )

    # -- names ---------------------------------------------------------------------------
    def resolve_topic(self, name: str) -> str:
        """ROS name resolution: absolute, relative to the namespace, or ``~`` private; then
        remaps (matched against the name as written and as resolved)."""
        if name in self._remaps:
            name = self._remaps[name]
        if name.startswith("/"):
            resolved = name
        elif name.startswith("~"):
            resolved = f"{self.fqn}/{name[1:].lstrip('/')}".rstrip("/")
        else:
            resolved = f"{self.namespace.rstrip('/')}/{name}"
        return self._remaps.get(resolved, resolved)

    # -- time ----------------------------------------------------------------------------
    @staticmethod
    def now_s() -> float:
        """Station clock: wall time in seconds (ROS system time)."""
        return time.time()

    # -- transport (backends) ------------------------------------------------------------
    @abstractmethod
    def create_publisher(
        self, msg_type: type[M], topic: str, qos: QoSProfile = DEFAULT
    ) -> Publisher[M]: ...

    @abstractmethod
    def create_subscription(
        self,
        msg_type: type[M],
        topic: str,
        callback: Callable[[M], None],
        qos: QoSProfile = DEFAULT,
    ) -> Subscription[M]: ...

    @abstractmethod
    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer: ...

    @abstractmethod
    def _spin(self, until: Callable[[], bool] | None) -> None:
        """Dispatch callbacks and timers until shutdown is requested or ``until()``."""

    @abstractmethod
    def _wake(self) -> None:
        """Interrupt a blocking wait so that spin notices a shutdown request."""

    @abstractmethod
    def _close_transport(self) -> None: ...

    # -- lifecycle -----------------------------------------------------------------------
    def on_shutdown(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once when the node stops (release devices, end the episode)."""
        self._on_shutdown.append(callback)

    exit_code = 0  # what the process exits with after a clean shutdown

    def request_shutdown(self, reason: str = "", *, exit_code: int = 0) -> None:
        """Stop spinning; ``exit_code`` != 0 says the node stopped because of a problem (the
        callbacks that release resources still run)."""
        if not self._shutdown.is_set():
            self.exit_code = exit_code
            if reason:
                (self.log.error if exit_code else self.log.info)("shutting down: %s", reason)
            self._shutdown.set()
            self._wake()

    @property
    def shutting_down(self) -> bool:
        return self._shutdown.is_set()

    def spin(self, until: Callable[[], bool] | None = None) -> None:
        """Run until SIGINT/SIGTERM, ``request_shutdown`` or ``until()`` returns True."""
        self.warn_undeclared_overrides()
        handlers = _install_signal_handlers(self)
        try:
            self._spin(until)
        finally:
            for sig, old in handlers.items():
                signal.signal(sig, old)

    def close(self) -> None:
        """Run the shutdown callbacks (newest first), then leave the DDS domain."""
        self._shutdown.set()
        errors = []
        while self._on_shutdown:
            callback = self._on_shutdown.pop()
            try:
                callback()
            except Exception as exc:  # every hook runs, the first failure is reported
                self.log.exception("shutdown step %s failed", getattr(callback, "__name__", ""))
                errors.append(exc)
        self._close_transport()
        if errors:
            raise errors[0]

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked_type(fqn: str, name: str, value: Any, default: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if not (isinstance(default, bool) and isinstance(value, bool)):
            raise ParameterError(
                f"node {fqn}: parameter {name!r} must be a bool like its "
                f"default {default!r}, got {value!r}"
            )
        return value
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    if isinstance(default, list | tuple) and isinstance(value, list | tuple):
        return list(value)
    if not isinstance(value, type(default)):
        raise ParameterError(
            f"node {fqn}: parameter {name!r} must be "
            f"{type(default).__name__} like its default {default!r}, "
            f"got {value!r}"
        )
    return value


def _install_signal_handlers(node: Node) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old[sig] = signal.getsignal(sig)
        signal.signal(sig, lambda s, _f: node.request_shutdown(signal.Signals(s).name))
    return old
