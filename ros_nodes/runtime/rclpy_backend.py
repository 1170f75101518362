"""rclpy backend: the same node API on a sourced ROS 2 distribution.

Nodes build ``ros_nodes.msgs`` dataclasses; this backend converts them field by field to and
from the distribution's own message classes (same names, same field order), so node code
does not depend on which backend runs it. Not exercised by the test suite: rclpy cannot be
installed from the package index here (issue 7); on a ROS 2 machine run the nodes with
``ROS_NODES_BACKEND=rclpy`` (the default when rclpy imports).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from ros_nodes.msgs import message_element, ros_type_name
from ros_nodes.runtime.args import RosArgs
from ros_nodes.runtime.node import Endpoint, M, Node, Publisher, Subscription, Timer
from ros_nodes.runtime.qos import DEFAULT, Durability, QoSProfile, Reliability


def ros_class(msg_type: type) -> Any:
    pkg, sub, name = ros_type_name(msg_type).split("/")
    return getattr(importlib.import_module(f"{pkg}.{sub}"), name)


def to_ros(msg: Any) -> Any:
    out = ros_class(type(msg))()
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if dataclasses.is_dataclass(value):
            value = to_ros(value)
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            value = [to_ros(v) for v in value]  # sequence<Msg>: trajectory points
        setattr(out, f.name, value)
    return out


def from_ros(ros_msg: Any, msg_type: type) -> Any:
    values = {}
    hints = {f.name: f for f in dataclasses.fields(msg_type)}
    for name, f in hints.items():
        value = getattr(ros_msg, name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        element = message_element(msg_type, name)
        if dataclasses.is_dataclass(default):
            value = from_ros(value, type(default))
        elif element is not None:
            value = [from_ros(v, element) for v in value]
        elif isinstance(f.default, bytes):
            value = bytes(value)
        elif isinstance(value, list | tuple) or hasattr(value, "tolist"):
            value = list(value)
        values[name] = value
    return msg_type(**values)


def rclpy_qos(profile: QoSProfile) -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
    from rclpy.qos import QoSProfile as RclpyQoS

    return RclpyQoS(
        history=HistoryPolicy.KEEP_LAST,
        depth=profile.depth,
        reliability=(
            ReliabilityPolicy.RELIABLE
            if profile.reliability is Reliability.RELIABLE
            else ReliabilityPolicy.BEST_EFFORT
        ),
        durability=(
            DurabilityPolicy.TRANSIENT_LOCAL
            if profile.durability is Durability.TRANSIENT_LOCAL
            else DurabilityPolicy.VOLATILE
        ),
    )


class RclpyPublisher(Publisher[M]):
    def __init__(self, pub: Any, topic: str) -> None:
        self._pub = pub
        self.topic = topic

    def publish(self, msg: M) -> None:
        self._pub.publish(to_ros(msg))

    def subscription_count(self) -> int:
        return self._pub.get_subscription_count()


class RclpySubscription(Subscription[M]):
    def __init__(self, node: Any, topic: str) -> None:
        self._node = node
        self.topic = topic

    def publishers(self) -> list[Endpoint]:
        return [
            Endpoint(
                participant=bytes(info.endpoint_gid).hex(),
                node=f"{info.node_namespace.rstrip('/')}/{info.node_name}",
            )
            for info in self._node.get_publishers_info_by_topic(self.topic)
        ]


class RclpyNode(Node):
    def __init__(self, default_name: str, ros_args: RosArgs, argv: list[str]) -> None:
        import rclpy

        super().__init__(default_name, ros_args)
        if not rclpy.ok():
            rclpy.init(args=["node", *argv])
        # rcl applies the same --ros-args (name, namespace, remaps, parameters) itself.
        self._node = rclpy.create_node(default_name)
        self.name, self.namespace = self._node.get_name(), self._node.get_namespace()
        self._rclpy = rclpy

    def declare_parameter(self, name: str, default: Any, description: str) -> Any:
        from rcl_interfaces.msg import ParameterDescriptor

        value = super().declare_parameter(name, default, description)
        self._node.declare_parameter(name, value, ParameterDescriptor(description=description))
        return self._node.get_parameter(name).value

    def resolve_topic(self, name: str) -> str:
        return self._node.resolve_topic_name(name)

    def create_publisher(
        self, msg_type: type[M], topic: str, qos: QoSProfile = DEFAULT
    ) -> Publisher[M]:
        pub = self._node.create_publisher(ros_class(msg_type), topic, rclpy_qos(qos))
        return RclpyPublisher(pub, pub.topic_name)

    def create_subscription(
        self,
        msg_type: type[M],
        topic: str,
        callback: Callable[[M], None],
        qos: QoSProfile = DEFAULT,
    ) -> Subscription[M]:
        sub = self._node.create_subscription(
            ros_class(msg_type), topic, lambda m: callback(from_ros(m, msg_type)), rclpy_qos(qos)
        )
        return RclpySubscription(self._node, sub.topic_name)

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(period_s, callback, 0.0)
        handle = self._node.create_timer(period_s, lambda: None if timer.cancelled else callback())
        timer.cancel = lambda: (setattr(timer, "cancelled", True), handle.cancel())  # type: ignore[method-assign]
        return timer

    def _spin(self, until: Callable[[], bool] | None) -> None:
        while self._rclpy.ok() and not self.shutting_down and not (until and until()):
            self._rclpy.spin_once(self._node, timeout_sec=0.1)

    def _wake(self) -> None:
        pass  # spin_once returns within 0.1 s

    def _close_transport(self) -> None:
        self._node.destroy_node()
        if self._rclpy.ok():
            self._rclpy.shutdown()
