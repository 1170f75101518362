"""The command-topic guard: the arm moves only on commands from exactly one publisher.

Checked on every command: who is matched on the command topic (the reader's matched
publications) and how old the command's stamp is. A second publisher, or a command stamped
too long ago (or in the future: a clock that is off), puts the arm on hold with an error that
names the offending participant. The hold ends by itself once exactly one publisher is
matched again and it sends a fresh command: targets are absolute poses and the teleop and
policy paths re-seed from the measured pose, so resuming never jumps.
"""

from __future__ import annotations

from dataclasses import dataclass

from ros_nodes.runtime import Endpoint


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    error: str | None = None  # set when this command caused or kept a hold


class CommandGuard:
    def __init__(self, *, topic: str, max_age_s: float) -> None:
        if max_age_s <= 0:
            raise ValueError(f"max command age must be positive, got {max_age_s} s")
        self.topic = topic
        self.max_age_s = max_age_s
        self.owner: Endpoint | None = None  # the one publisher commands are taken from
        self.hold_reason: str | None = None

    def check(self, publishers: list[Endpoint], stamp_s: float, now_s: float) -> Verdict:
        """Decide on one command stamped ``stamp_s`` received at ``now_s`` (station clock)."""
        if len(publishers) != 1:
            return self._hold(self._too_many(publishers))
        (publisher,) = publishers
        age_s = now_s - stamp_s
        if age_s > self.max_age_s or age_s < -self.max_age_s:
            when = f"{age_s:.3f} s old" if age_s > 0 else f"{-age_s:.3f} s in the future"
            return self._hold(
                f"stale command on {self.topic} from {publisher}: stamped {when} (limit "
                f"{self.max_age_s} s); check the publisher's clock or why it lags"
            )
        self.owner = publisher
        self.hold_reason = None
        return Verdict(True)

    def _too_many(self, publishers: list[Endpoint]) -> str:
        if not publishers:
            return f"a command on {self.topic} arrived from a publisher that is gone"
        offenders = [
            p for p in publishers if self.owner is None or p.participant != self.owner.participant
        ]
        expected = f" (expected only {self.owner})" if self.owner else ""
        return (
            f"{len(publishers)} publishers on {self.topic}: "
            f"{', '.join(str(p) for p in offenders)}{expected}; the arm moves only on "
            "commands from exactly one publisher: stop the extra one"
        )

    def _hold(self, reason: str) -> Verdict:
        self.hold_reason = reason
        return Verdict(False, reason)
