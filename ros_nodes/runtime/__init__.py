"""Node runtime: one small API, two backends (rclpy when importable, cyclonedds otherwise).

    node = create_node("camera_node", argv)       # argv: "--ros-args -r __node:=front ..."
    fps = node.declare_parameter("fps", 30.0, "frames per second")
    pub = node.create_publisher(Image, "color/image_raw", SENSOR_DATA)
    node.create_timer(1 / fps, lambda: pub.publish(...))
    node.spin()                                    # until SIGINT/SIGTERM
    node.close()

``ROS_NODES_BACKEND=dds|rclpy`` forces a backend. By default rclpy is used when it really
imports in this interpreter (pip cyclonedds and rmw_cyclonedds in one process can conflict),
else dds. Being on the path is not enough: a sourced Humble (rclpy for Python 3.10) or Jazzy
(3.12) puts an rclpy on ``PYTHONPATH`` whose compiled core the project's 3.11 cannot load;
the runtime then says why and runs on dds. A forced ``rclpy`` that cannot import is an error.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable

from ros_nodes.runtime.args import RosArgs, RosArgsError, parse_ros_args
from ros_nodes.runtime.node import (
    Endpoint,
    Node,
    Parameter,
    ParameterError,
    Publisher,
    Subscription,
)
from ros_nodes.runtime.qos import (
    DEFAULT,
    FRAME_RECORDING,
    LATCHED,
    RECORDING,
    SENSOR_DATA,
    QoSProfile,
)

__all__ = [
    "DEFAULT",
    "FRAME_RECORDING",
    "LATCHED",
    "RECORDING",
    "SENSOR_DATA",
    "Endpoint",
    "Node",
    "Parameter",
    "ParameterError",
    "Publisher",
    "QoSProfile",
    "RosArgs",
    "RosArgsError",
    "Subscription",
    "backend_name",
    "create_node",
    "parse_ros_args",
    "run_node",
]


def backend_name() -> str:
    """``dds`` or ``rclpy``: ``ROS_NODES_BACKEND`` if set, else rclpy when it imports."""
    forced = os.environ.get("ROS_NODES_BACKEND", "").strip().lower()
    if forced and forced not in ("dds", "rclpy"):
        raise ValueError(f"ROS_NODES_BACKEND must be 'dds' or 'rclpy', got {forced!r}")
    if forced == "dds":
        return "dds"
    if importlib.util.find_spec("rclpy") is None:
        if forced:
            raise ValueError(
                f"ROS_NODES_BACKEND=rclpy, but no rclpy is importable by "
                f"{sys.executable} (Python {_python()}): source a ROS 2 "
                "distribution built for this Python, or set ROS_NODES_BACKEND=dds"
            )
        return "dds"
    why = rclpy_import_error()
    if why is None:
        return "rclpy"
    if forced:
        raise ValueError(
            f"ROS_NODES_BACKEND=rclpy, but rclpy does not import in Python "
            f"{_python()} ({sys.executable}): {why}. A sourced ROS 2 is built for "
            "its own Python (Humble 3.10, Jazzy 3.12); set ROS_NODES_BACKEND=dds "
            "to speak ROS 2 over the pip cyclonedds binding instead"
        )
    _warn_once(
        f"rclpy is on the path ({_rclpy_location()}) but does not import in Python "
        f"{_python()}: {why}; using the dds backend (ROS_NODES_BACKEND=dds silences "
        "this)"
    )
    return "dds"


@functools.cache
def rclpy_import_error() -> str | None:
    """Why ``import rclpy`` fails in this interpreter (None when it imports); tried once."""
    try:
        importlib.import_module("rclpy")
    except Exception as exc:  # ImportError, or whatever a foreign build's import raises
        return f"{type(exc).__name__}: {exc}"
    return None


def _python() -> str:
    return ".".join(map(str, sys.version_info[:2]))


def _rclpy_location() -> str:
    spec = importlib.util.find_spec("rclpy")
    return str(spec.origin) if spec is not None else "?"


@functools.cache
def _warn_once(message: str) -> None:
    logging.getLogger("ros_nodes.runtime").warning("%s", message)


def create_node(default_name: str, argv: list[str] | None = None) -> Node:
    """A node named by ``--ros-args -r __node:=`` (or ``default_name``) on the chosen backend."""
    argv = sys.argv[1:] if argv is None else list(argv)
    ros_args = parse_ros_args(argv)
    if backend_name() == "rclpy":
        from ros_nodes.runtime.rclpy_backend import RclpyNode

        return RclpyNode(default_name, ros_args, argv)
    from ros_nodes.runtime.dds import DdsNode

    return DdsNode(default_name, ros_args)


def configure_logging() -> None:
    """ROS-like console lines: ``[INFO] [1712345678.123] [/camera/front]: message``."""
    if logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("[%(levelname)s] [%(created).3f] [%(name)s]: %(message)s")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def run_node(
    default_name: str, build: Callable[[Node], object], argv: list[str] | None = None
) -> int:
    """Create the node, let ``build`` set it up, spin until a signal, shut down cleanly.

    Returns the process exit code: 0 after a clean shutdown, 2 for bad arguments or
    parameters (the message names the argument), 1 when setup or a callback failed.
    """
    configure_logging()
    log = logging.getLogger(default_name)
    try:
        node = create_node(default_name, argv)
    except (RosArgsError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    try:
        build(node)
        node.spin()
    except (ParameterError, RosArgsError) as exc:
        node.log.error("%s", exc)
        node.close()
        return 2
    except Exception:
        node.log.exception("node %s failed", node.fqn)
        node.close()
        return 1
    node.close()
    return node.exit_code
