"""What the recorder takes from ``/arbiter/status`` in a deployment graph.

Per recorded step at time t: the newest status stamped at or before t gives who was in control
(``control_source``: policy, human or hold), the policy's and the operator's action; before
the arbiter's first command of the episode the step counts as hold and both actions are the
recorded action. Per episode: whether the operator took over (then it is committed as an
``intervention`` episode, else ``policy``), the checkpoint, takeovers, safety-filter counts
during the episode, and the first fault the arbiter reported (the episode ends there,
interrupted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from data_collection.alignment import StampedBuffer
from robot_learning.keys import CONTROL_SOURCE, HUMAN_ACTION, POLICY_ACTION
from robot_learning.runtime.controllers import ControlSource
from robot_learning.store import Source
from ros_nodes import msgs, topics


@dataclass
class EpisodeControl:
    start_s: float
    safety_at_start: dict[str, int]
    human_steps: int = 0
    policy_steps: int = 0
    hold_steps: int = 0
    faults: list[str] = field(default_factory=list)


class ArbiterStream:
    def __init__(self, *, horizon_s: float = 3.0) -> None:
        self.statuses: StampedBuffer[dict[str, Any]] = StampedBuffer(horizon_s=horizon_s)
        self.latest: dict[str, Any] = {}
        self.episode: EpisodeControl | None = None

    def on_status(self, msg: msgs.String) -> str | None:
        """Keep one status; returns a fault that is new in the open episode (None: none)."""
        status = json.loads(msg.data)
        self.latest = status
        self.statuses.add(float(status["stamp"]), status)
        fault = status.get("fault")
        ep = self.episode
        if fault and ep is not None and status["stamp"] >= ep.start_s and fault not in ep.faults:
            ep.faults.append(fault)
            return fault
        return None

    @property
    def not_ready(self) -> str | None:
        if not self.latest:
            return f"no {topics.ARBITER_STATUS} yet: is arbiter_node running?"
        if not self.latest.get("ready"):
            return f"arbiter not ready: {self.latest.get('error')}"
        return None

    def begin(self, start_s: float) -> None:
        self.episode = EpisodeControl(start_s, dict(self.latest.get("safety") or {}))

    def control_at(self, t: float, action: np.ndarray) -> dict[str, Any]:
        """The intervention keys of the step at ``t`` (``action``: what the arm was sent)."""
        found = self.statuses.latest_at(t)
        status = found[1] if found is not None else {}
        ep = self.episode
        fresh = ep is not None and found is not None and found[0] >= ep.start_s
        if not fresh or not status.get("active") or status.get("control_source") is None:
            source, policy, human = ControlSource.HOLD, action, action
        else:
            source = ControlSource(status["control_source"])
            policy = np.asarray(status["policy_action"], dtype=np.float64)
            human = np.asarray(status["human_action"], dtype=np.float64)
        if ep is not None:
            if source == ControlSource.HUMAN:
                ep.human_steps += 1
            elif source == ControlSource.POLICY:
                ep.policy_steps += 1
            else:
                ep.hold_steps += 1
        return {CONTROL_SOURCE: np.uint8(source), POLICY_ACTION: policy, HUMAN_ACTION: human}

    def end(self) -> tuple[Source, dict[str, Any]]:
        """The episode's source and notes; forgets the episode."""
        ep, last = self.episode, self.latest
        assert ep is not None
        self.episode = None
        safety = {
            k: v - ep.safety_at_start.get(k, 0)
            for k, v in (last.get("safety") or {}).items()
            if v - ep.safety_at_start.get(k, 0) > 0
        }
        notes = {
            "checkpoint": last.get("checkpoint"),
            "checkpoint_sha256": last.get("checkpoint_sha256"),
            "takeovers": last.get("takeovers", 0),
            "safety": safety,
            "control_steps": {
                "policy": ep.policy_steps,
                "human": ep.human_steps,
                "hold": ep.hold_steps,
            },
            "faults": ep.faults,
        }
        took_over = ep.human_steps > 0 or notes["takeovers"] > 0
        return (Source.INTERVENTION if took_over else Source.POLICY), notes
