"""Streams of different rates onto one episode clock, by their capture stamps.

A ``StampedBuffer`` keeps the recent samples of one stream in stamp order; ``latest_at(t)``
is the newest sample captured at or before ``t`` (never one from the future, so a step never
sees what happened after it); ``nearest(t)`` is the sample captured closest to ``t`` on
either side (pairing frames of cameras that capture the same instants). ``FrameGaps``
counts frames a stream lost, from the spacing of the stamps that did arrive.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class StampedBuffer(Generic[T]):
    def __init__(self, *, horizon_s: float) -> None:
        self.horizon_s = horizon_s  # how much history is kept behind the newest sample
        self._stamps: list[float] = []
        self._values: list[T] = []

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp_s: float, value: T) -> None:
        if self._stamps and stamp_s < self._stamps[-1]:  # out of order: insert in place
            i = bisect.bisect_right(self._stamps, stamp_s)
            self._stamps.insert(i, stamp_s)
            self._values.insert(i, value)
        else:
            self._stamps.append(stamp_s)
            self._values.append(value)
        cut = bisect.bisect_left(self._stamps, self._stamps[-1] - self.horizon_s)
        if cut > 0:
            del self._stamps[:cut], self._values[:cut]

    def latest_at(self, t_s: float) -> tuple[float, T] | None:
        i = bisect.bisect_right(self._stamps, t_s)
        return None if i == 0 else (self._stamps[i - 1], self._values[i - 1])

    def nearest(self, t_s: float) -> tuple[float, T] | None:
        """The sample stamped closest to ``t_s`` (the earlier one on a tie)."""
        i = bisect.bisect_left(self._stamps, t_s)
        candidates = [j for j in (i - 1, i) if 0 <= j < len(self._stamps)]
        if not candidates:
            return None
        j = min(candidates, key=lambda k: abs(self._stamps[k] - t_s))
        return self._stamps[j], self._values[j]

    def between(self, start_s: float, end_s: float) -> Iterator[tuple[float, T]]:
        """Samples with ``start_s < stamp <= end_s``, oldest first."""
        i = bisect.bisect_right(self._stamps, start_s)
        j = bisect.bisect_right(self._stamps, end_s)
        return zip(self._stamps[i:j], self._values[i:j], strict=True)

    @property
    def newest_s(self) -> float | None:
        return self._stamps[-1] if self._stamps else None


@dataclass
class FrameGaps:
    """Frames lost in a stream, estimated from gaps in the stamps of those received."""

    nominal_period_s: float
    dropped: int = 0
    received: int = 0
    _last_s: float | None = field(default=None, repr=False)

    def add(self, stamp_s: float) -> None:
        if self._last_s is not None:
            gap = stamp_s - self._last_s
            missing = round(gap / self.nominal_period_s) - 1
            if missing > 0:
                self.dropped += missing
        self._last_s = stamp_s
        self.received += 1
