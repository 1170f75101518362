"""Policy inference off the control loop's thread, so a slow model never delays a command.

The loop hands observations to an ``InferenceWorker`` and keeps commanding from the chunk it
already has; the worker runs ``policy.observe``/``policy.act`` in order on its own thread
(torch releases the GIL while it computes) and hands finished chunks back. Every chunk keeps
the time of the observation it came from, so the executor can drop what is already past.

A policy that raises is reported once with its error and stops being asked; one that takes
longer than ``stall_after_s`` counts as hung: the caller holds the arm and tells the operator.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from robot_learning.errors import RobotLearningError
from robot_learning.runtime.chunk import ActionChunk
from robot_learning.runtime.observation import Observation, PolicyLike

log = logging.getLogger(__name__)


class PolicyFailedError(RobotLearningError, RuntimeError):
    """The policy raised during inference; the message names the error."""


@dataclass(frozen=True)
class InferenceResult:
    chunk: ActionChunk
    observation_time_s: float
    latency_s: float  # wall time of policy.act


class InferenceWorker:
    """One background thread per policy; ``submit_act`` while ``idle``, ``poll`` each tick."""

    def __init__(
        self, policy: PolicyLike, *, stall_after_s: float = 2.0, name: str = "policy-inference"
    ) -> None:
        self.policy = policy
        self.stall_after_s = stall_after_s
        self._jobs: queue.Queue[tuple[str, Observation] | None] = queue.Queue()
        self._results: queue.Queue[InferenceResult] = queue.Queue()
        self._lock = threading.Lock()
        self._act_started: float | None = None  # perf_counter of the act in flight
        self._act_pending = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- loop side ------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No act queued or running: a new one may be submitted."""
        with self._lock:
            return not self._act_pending

    def submit_act(self, observation: Observation) -> None:
        with self._lock:
            if self._act_pending:
                raise RuntimeError("submit_act while an act is still in flight")
            self._act_pending = True
        self._jobs.put(("act", observation))

    def submit_observe(self, observation: Observation) -> None:
        """History for policies that keep it; processed in order with the acts."""
        self._jobs.put(("observe", observation))

    def poll(self) -> InferenceResult | None:
        """The newest finished chunk, if any; raises ``PolicyFailedError`` once if it failed."""
        if self._error is not None:
            error, self._error = self._error, None
            raise PolicyFailedError(f"policy inference failed: {error!r}") from error
        result = None
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return result

    def stalled_for_s(self) -> float:
        """How long the act in flight has run beyond ``stall_after_s`` (0 when not stalled)."""
        with self._lock:
            started = self._act_started
        if started is None:
            return 0.0
        return max(0.0, time.perf_counter() - started - self.stall_after_s)

    def close(self, timeout_s: float = 5.0) -> None:
        self._jobs.put(None)
        self._thread.join(timeout_s)

    # -- worker side ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, observation = job
            try:
                if kind == "observe":
                    self.policy.observe(observation)
                    continue
                with self._lock:
                    self._act_started = time.perf_counter()
                started = time.perf_counter()
                chunk = self.policy.act(observation)
                self._results.put(
                    InferenceResult(chunk, observation.time_s, time.perf_counter() - started)
                )
            except BaseException as error:  # noqa: BLE001 (reported to the loop, not lost)
                log.error("policy %s failed: %r", kind, error)
                self._error = error
            finally:
                if kind == "act":
                    with self._lock:
                        self._act_started = None
                        self._act_pending = False
