"""Node runtime: one small API, two backends (rclpy when importable, cyclonedds otherwise).

    node = create_node("camera_node", argv)       # argv: "--ros-args -r __node:=front ..."
    fps = node.declare_parameter("fps", 30.0, "frames per second")
    pub = node.create_publisher(Image, "color/image_raw", SENSOR_DATA)
    node.create_timer(1 / fps, lambda: pub.publish(...))
    node.spin()                                    # until SIGINT/SIGTERM
    node.close()

``ROS_NODES_BACKEND=dds|rclpy`` forces a backend; by default rclpy is used when a ROS 2
distribution is sourced (pip cyclonedds and rmw_cyclonedds in one process can conflict).
"""

from __future__ import annotations

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
from ros_nodes.runtime.qos import DEFAULT, LATCHED, SENSOR_DATA, QoSProfile

__all__ = [
    "DEFAULT", "LATCHED", "SENSOR_DATA", "Endpoint", "Node", "Parameter", "ParameterError",
    "Publisher", "QoSProfile", "RosArgs", "RosArgsError", "Subscription", "backend_name",
    "create_node", "parse_ros_args", "run_node",
]


def backend_name() -> str:
    forced = os.environ.get("ROS_NODES_BACKEND", "").strip().lower()
    if forced in ("dds", "rclpy"):
        return forced
    if forced:
        raise ValueError(f"ROS_NODES_BACKEND must be 'dds' or 'rclpy', got {forced!r}")
    return "rclpy" if importlib.util.find_spec("rclpy") is not None else "dds"


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
    handler.setFormatter(logging.Formatter("[%(levelname)s] [%(created).3f] [%(name)s]: "
                                           "%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def run_node(default_name: str, build: Callable[[Node], object],
             argv: list[str] | None = None) -> int:
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
