"""Pure-RTPS backend on the pip ``cyclonedds`` binding: ROS 2 on the wire without ROS 2.

ROS 2 conventions it follows (ROS_INTERFACES.md): topic ``/a/b`` is DDS topic ``rt/a/b``,
types are ``pkg::msg::dds_::T_`` @final structs (``ros_nodes.msgs``), QoS profiles map to
DDS history/reliability/durability, the domain id is ``ROS_DOMAIN_ID`` (default 0) like
rmw_cyclonedds. The participant carries the node's name in its EntityName and user data
(``node=/ns/name;pid=N;``), so a peer can say who is behind a matched writer.

Network: when ``CYCLONEDDS_URI`` is not set, the runtime sets it to ``LOOPBACK_CONFIG``
(loopback interface only, multicast off, 127.0.0.1 as the unicast peer), so nothing leaves
the machine unless a user configures a real network (README: the "**Network.**" paragraph
of "ROS 2 nodes (`ros_nodes`) and launch files", and "DDS discovery" under troubleshooting).

One thread dispatches everything: a WaitSet wakes on new samples, on a guard condition
(shutdown) or at the next timer deadline; callbacks run one at a time, as in rclpy's
single-threaded executor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ros_nodes.runtime.args import RosArgs
from ros_nodes.runtime.node import Endpoint, M, Node, Publisher, Subscription, Timer
from ros_nodes.runtime.qos import DEFAULT, Durability, QoSProfile, Reliability

LOOPBACK_CONFIG = (
    '<CycloneDDS><Domain id="any"><General><Interfaces><NetworkInterface name="lo"/>'
    "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery><Peers>"
    '<Peer address="127.0.0.1"/></Peers><ParticipantIndex>auto</ParticipantIndex>'
    "<MaxAutoParticipantIndex>50</MaxAutoParticipantIndex></Discovery></Domain></CycloneDDS>"
)
MAX_TAKE = 64  # samples taken per reader per wake-up


def ensure_network_config() -> str:
    """Confine DDS to loopback unless the user chose a configuration; returns the one used."""
    return os.environ.setdefault("CYCLONEDDS_URI", LOOPBACK_CONFIG)


def domain_id() -> int:
    text = os.environ.get("ROS_DOMAIN_ID", "0") or "0"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"ROS_DOMAIN_ID must be an integer 0..232, got {text!r}") from None
    if not 0 <= value <= 232:
        raise ValueError(f"ROS_DOMAIN_ID must be 0..232, got {value}")
    return value


def dds_topic_name(ros_topic: str) -> str:
    """``/camera/front/color/image_raw`` -> ``rt/camera/front/color/image_raw``."""
    return "rt" + ros_topic


def dds_qos(profile: QoSProfile) -> Any:
    from cyclonedds.core import Policy, Qos
    from cyclonedds.util import duration

    reliability = (
        Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100))
        if profile.reliability is Reliability.RELIABLE
        else Policy.Reliability.BestEffort
    )
    durability = (
        Policy.Durability.TransientLocal
        if profile.durability is Durability.TRANSIENT_LOCAL
        else Policy.Durability.Volatile
    )
    return Qos(reliability, durability, Policy.History.KeepLast(profile.depth))


class DdsPublisher(Publisher[M]):
    def __init__(self, writer: Any, topic: str) -> None:
        self._writer = writer
        self.topic = topic

    def publish(self, msg: M) -> None:
        self._writer.write(msg)

    def subscription_count(self) -> int:
        return len(self._writer.get_matched_subscriptions())


class DdsSubscription(Subscription[M]):
    def __init__(
        self, node: DdsNode, reader: Any, condition: Any, topic: str, callback: Callable[[M], None]
    ) -> None:
        self._node = node
        self.reader = reader
        self.condition = condition
        self.topic = topic
        self.callback = callback

    def publishers(self) -> list[Endpoint]:
        out = []
        for handle in self.reader.get_matched_publications():
            data = self.reader.get_matched_publication_data(handle)
            if data is not None:
                out.append(self._node.describe_participant(data.participant_key))
        return out


class DdsNode(Node):
    """A node that is one DDS participant."""

    def __init__(self, default_name: str, ros_args: RosArgs) -> None:
        super().__init__(default_name, ros_args)
        ensure_network_config()
        from cyclonedds.core import GuardCondition, Policy, Qos, WaitSet
        from cyclonedds.domain import DomainParticipant

        user_data = f"node={self.fqn};pid={os.getpid()};".encode()
        self.participant = DomainParticipant(
            domain_id(), qos=Qos(Policy.EntityName(self.fqn), Policy.Userdata(user_data))
        )
        self._guard = GuardCondition(self.participant)
        self._waitset = WaitSet(self.participant)
        self._waitset.attach(self._guard)
        self._subscriptions: list[DdsSubscription[Any]] = []
        self._timers: list[Timer] = []
        self._topics: dict[str, Any] = {}
        self._participants_reader: Any = None
        self._known_participants: dict[Any, Endpoint] = {}
        self.participant_guid = str(self.participant.guid)

    # -- entities ------------------------------------------------------------------------
    def _topic(self, msg_type: type, ros_topic: str) -> Any:
        from cyclonedds.topic import Topic

        name = dds_topic_name(ros_topic)
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = Topic(self.participant, name, msg_type)
        elif topic.data_type is not msg_type:
            raise TypeError(
                f"topic {ros_topic}: already used with type "
                f"{topic.data_type.__name__}, not {msg_type.__name__}"
            )
        return topic

    def create_publisher(
        self, msg_type: type[M], topic: str, qos: QoSProfile = DEFAULT
    ) -> Publisher[M]:
        from cyclonedds.pub import DataWriter

        resolved = self.resolve_topic(topic)
        writer = DataWriter(self.participant, self._topic(msg_type, resolved), qos=dds_qos(qos))
        return DdsPublisher(writer, resolved)

    def create_subscription(
        self,
        msg_type: type[M],
        topic: str,
        callback: Callable[[M], None],
        qos: QoSProfile = DEFAULT,
    ) -> Subscription[M]:
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState
        from cyclonedds.sub import DataReader

        resolved = self.resolve_topic(topic)
        reader = DataReader(self.participant, self._topic(msg_type, resolved), qos=dds_qos(qos))
        condition = ReadCondition(reader, SampleState.NotRead | ViewState.Any | InstanceState.Any)
        self._waitset.attach(condition)
        sub = DdsSubscription(self, reader, condition, resolved, callback)
        self._subscriptions.append(sub)
        return sub

    def create_timer(self, period_s: float, callback: Callable[[], None]) -> Timer:
        if period_s <= 0:
            raise ValueError(f"node {self.fqn}: timer period must be positive, got {period_s}")
        timer = Timer(period_s, callback, time.monotonic() + period_s)
        self._timers.append(timer)
        return timer

    # -- who is out there ----------------------------------------------------------------
    def describe_participant(self, key: Any) -> Endpoint:
        """The node name and pid a remote participant announced in its user data."""
        if key not in self._known_participants:
            self._refresh_participants()
        return self._known_participants.get(key, Endpoint(str(key)))

    def _refresh_participants(self) -> None:
        from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsParticipant
        from cyclonedds.core import Policy

        if self._participants_reader is None:
            self._participants_reader = BuiltinDataReader(
                self.participant, BuiltinTopicDcpsParticipant
            )
        for sample in self._participants_reader.read(N=256):
            qos = getattr(sample, "qos", None)
            if qos is None:
                continue
            fields = {}
            user_data = qos[Policy.Userdata] if Policy.Userdata in qos else None  # noqa: SIM401 (Qos has no get)
            if user_data is not None:
                text = bytes(user_data.data).decode(errors="replace")
                fields = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
            pid = fields.get("pid")
            self._known_participants[sample.key] = Endpoint(
                str(sample.key), fields.get("node"), int(pid) if pid and pid.isdigit() else None
            )

    # -- executor ------------------------------------------------------------------------
    def _spin(self, until: Callable[[], bool] | None) -> None:
        while not self.shutting_down and not (until is not None and until()):
            now = time.monotonic()
            wait_s = 0.1
            for timer in self._timers:
                if not timer.cancelled:
                    wait_s = min(wait_s, timer.next_s - now)
            if wait_s > 0:
                self._waitset.wait(int(wait_s * 1e9))
            self._dispatch_samples()
            self._run_due_timers()

    def _dispatch_samples(self) -> None:
        for sub in self._subscriptions:
            if self.shutting_down:
                return
            for sample in sub.reader.take(N=MAX_TAKE, condition=sub.condition):
                if sample.sample_info.valid_data:
                    sub.callback(sample)

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        for timer in list(self._timers):
            if timer.cancelled or now < timer.next_s or self.shutting_down:
                continue
            timer.callback()
            timer.next_s += timer.period_s
            if timer.next_s < now:  # fell more than a period behind: skip, keep the phase
                missed = int((now - timer.next_s) // timer.period_s) + 1
                timer.overruns += missed
                timer.next_s += missed * timer.period_s

    def _wake(self) -> None:
        self._guard.set(True)

    def _close_transport(self) -> None:
        self._subscriptions.clear()
        self._timers.clear()
        # Deleting the participant deletes every entity in it and tells the peers at once
        # (they see its writers go), rather than whenever the garbage collector gets to it.
        if self.participant is not None:
            self.participant.__del__()
            self.participant = None
