"""A DDS participant inside the test process that collects what the graph publishes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from ros_nodes.runtime import DEFAULT, LATCHED, Node, QoSProfile, create_node


class Observer:
    """Subscribes to topics and keeps every message (or a function of it), by topic."""

    def __init__(self, name: str = "test_observer") -> None:
        self.node: Node = create_node(name, [])
        self.messages: dict[str, list[Any]] = {}
        self.latest_status: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def collect(
        self,
        msg_type: type,
        topic: str,
        qos: QoSProfile = DEFAULT,
        keep: Callable[[Any], Any] = lambda m: m,
    ) -> None:
        self.messages[topic] = []

        def on_message(msg: Any) -> None:
            with self._lock:
                self.messages[topic].append(keep(msg))

        self.node.create_subscription(msg_type, topic, on_message, qos)

    def status(self, msg_type: type, topic: str) -> None:
        def on_status(msg: Any) -> None:
            self.latest_status[topic] = json.loads(msg.data)

        self.node.create_subscription(msg_type, topic, on_status, LATCHED)

    def publisher(self, msg_type: type, topic: str) -> Any:
        return self.node.create_publisher(msg_type, topic, DEFAULT)

    def start(self) -> Observer:
        self._thread = threading.Thread(target=self.node.spin, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.node.request_shutdown()
        if self._thread is not None:
            self._thread.join(5)
        self.node.close()

    def snapshot(self, topic: str) -> list[Any]:
        with self._lock:
            return list(self.messages[topic])
