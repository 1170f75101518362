"""A device's own clock (ms, arbitrary origin) mapped onto the station clock (s).

For cameras whose frames carry only hardware timestamps (RealSense ``hardware_clock``
domain): the arrival time on the host bounds the capture time from above, so the offset
between the two clocks is estimated from the lower envelope of ``arrival - device``.
"""

from __future__ import annotations

import collections
import logging

log = logging.getLogger(__name__)


class DeviceClockMapper:
    """Maps a device clock (ms, arbitrary origin) onto the station clock (s).

    The transfer delay is never negative, so the smallest ``arrival - device`` seen over a
    sliding window is the best offset estimate (the lower envelope); the window follows slow
    drift between the two crystals. A device clock running backwards (reset) restarts it.
    """

    def __init__(self, *, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self._last_device_s: float | None = None

    def map(self, device_ms: float, arrival_s: float) -> float:
        device_s = device_ms / 1000.0
        if self._last_device_s is not None and device_s < self._last_device_s:
            log.warning(
                "device clock went backwards (%.3f -> %.3f s); resyncing",
                self._last_device_s,
                device_s,
            )
            self._samples.clear()
        self._last_device_s = device_s
        offset_s = arrival_s - device_s
        # Monotonic deque: offsets increase from front to back, so the front is the minimum.
        while self._samples and self._samples[-1][1] >= offset_s:
            self._samples.pop()
        self._samples.append((arrival_s, offset_s))
        while self._samples[0][0] < arrival_s - self.window_s:
            self._samples.popleft()
        return device_s + self._samples[0][1]
