"""Keyboard teleop from a terminal in cbreak mode (no X server, works over ssh).

Default keys (base frame, REP-103: x forward, y left, z up):

    w / s      +x / -x        i / k   or  Up / Down       pitch +wy / -wy
    a / d      +y / -y        j / l   or  Left / Right    yaw   +wz / -wz
    r / f      +z / -z        u / o                        roll  +wx / -wx
    space      gripper toggle            tab        intervene on/off (toggle)
    enter      episode success           backspace  episode fail
    b          episode start             x / delete episode discard

A terminal reports key presses, never releases; a held key repeats (after the OS's repeat
delay, about 250-600 ms, then about 30 Hz). So a key keeps its axis moving for
``initial_hold_s`` after the first press (bridging the repeat delay) and ``repeat_hold_s``
after each repeat: a tap is a short nudge, a held key moves smoothly, and letting go stops
within ``repeat_hold_s``. Opposite keys cancel. ``read`` never blocks.

:class:`KeyDecoder` (bytes -> key names) and :class:`KeyboardMapper` (keys + time ->
command) are pure, so they are tested by feeding bytes through a pty.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent

log = logging.getLogger(__name__)

_LONE_ESC_S = 0.05  # an ESC with nothing after it for this long is the Escape key itself

# Key names (constants, so a typo is an import error).
UP, DOWN, LEFT, RIGHT = "up", "down", "left", "right"
ENTER, BACKSPACE, DELETE, SPACE, TAB, ESCAPE = "enter", "backspace", "delete", "space", "tab", "esc"

_ESCAPE_SEQUENCES = {
    b"\x1b[A": UP,
    b"\x1b[B": DOWN,
    b"\x1b[C": RIGHT,
    b"\x1b[D": LEFT,
    b"\x1bOA": UP,
    b"\x1bOB": DOWN,
    b"\x1bOC": RIGHT,
    b"\x1bOD": LEFT,  # application mode
    b"\x1b[3~": DELETE,
}
_SINGLE_BYTES = {
    b"\r": ENTER,
    b"\n": ENTER,
    b"\x7f": BACKSPACE,
    b"\x08": BACKSPACE,
    b" ": SPACE,
    b"\t": TAB,
}

# Axis index into the twist (vx, vy, vz, wx, wy, wz) and sign.
DEFAULT_MOTION_KEYS: Mapping[str, tuple[int, float]] = MappingProxyType(
    {
        "w": (0, 1.0),
        "s": (0, -1.0),
        "a": (1, 1.0),
        "d": (1, -1.0),
        "r": (2, 1.0),
        "f": (2, -1.0),
        "u": (3, 1.0),
        "o": (3, -1.0),
        "i": (4, 1.0),
        "k": (4, -1.0),
        "j": (5, 1.0),
        "l": (5, -1.0),
        UP: (4, 1.0),
        DOWN: (4, -1.0),
        LEFT: (5, 1.0),
        RIGHT: (5, -1.0),
    }
)
DEFAULT_EVENT_KEYS: Mapping[str, TeleopEvent] = MappingProxyType(
    {
        ENTER: TeleopEvent.SUCCESS,
        BACKSPACE: TeleopEvent.FAIL,
        "b": TeleopEvent.START,
        "x": TeleopEvent.DISCARD,
        DELETE: TeleopEvent.DISCARD,
    }
)


class KeyDecoder:
    """Terminal bytes -> key names; an escape sequence split across reads is completed."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        buf, keys = self._pending + data, []
        self._pending = b""
        i = 0
        while i < len(buf):
            if buf[i : i + 1] == b"\x1b":
                seq = next((s for s in _ESCAPE_SEQUENCES if buf.startswith(s, i)), None)
                if seq is not None:
                    keys.append(_ESCAPE_SEQUENCES[seq])
                    i += len(seq)
                    continue
                rest = buf[i:]
                if any(s.startswith(rest) for s in _ESCAPE_SEQUENCES):
                    self._pending = rest  # incomplete: wait for the next read
                    break
                keys.append(ESCAPE)  # a lone ESC or an unknown sequence's introducer
                i += 1
                if buf[i : i + 1] in (b"[", b"O"):  # skip an unknown CSI/SS3 sequence
                    i += 1
                    while i < len(buf) and not 0x40 <= buf[i] <= 0x7E:
                        i += 1
                    i += 1
                continue
            ch = buf[i : i + 1]
            keys.append(_SINGLE_BYTES.get(ch) or ch.decode("latin-1").lower())
            i += 1
        return keys

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> list[str]:
        """A lone ESC left pending once no more bytes came (the Escape key itself)."""
        pending, self._pending = self._pending, b""
        return [ESCAPE] if pending else []


@dataclass(frozen=True)
class KeyboardConfig:
    linear_speed_mps: float = 0.05
    angular_speed_radps: float = 0.3
    initial_hold_s: float = 0.6  # > typical key-repeat delay, so a held key never stutters
    repeat_hold_s: float = 0.1  # > typical repeat interval (~33 ms)
    motion_keys: Mapping[str, tuple[int, float]] = field(
        default_factory=lambda: DEFAULT_MOTION_KEYS
    )
    event_keys: Mapping[str, TeleopEvent] = field(default_factory=lambda: DEFAULT_EVENT_KEYS)
    gripper_key: str = SPACE
    intervene_key: str = TAB

    def __post_init__(self) -> None:
        object.__setattr__(self, "motion_keys", MappingProxyType(dict(self.motion_keys)))
        object.__setattr__(self, "event_keys", MappingProxyType(dict(self.event_keys)))
        if not (self.linear_speed_mps > 0 and self.angular_speed_radps > 0):
            raise ValueError("KeyboardConfig speeds must be > 0")
        if not 0 < self.repeat_hold_s <= self.initial_hold_s:
            raise ValueError(
                f"KeyboardConfig needs 0 < repeat_hold_s ({self.repeat_hold_s}) <= "
                f"initial_hold_s ({self.initial_hold_s})"
            )
        taken = set(self.motion_keys) & (
            set(self.event_keys) | {self.gripper_key, self.intervene_key}
        )
        if taken:
            raise ValueError(f"KeyboardConfig: keys bound twice: {sorted(taken)}")
        for key, (axis, _sign) in self.motion_keys.items():
            if not 0 <= axis < 6:
                raise ValueError(f"KeyboardConfig: key {key!r} maps to twist axis {axis}")


class KeyboardMapper:
    """Key presses over time -> TeleopCommand (pure: the caller passes the time)."""

    def __init__(self, config: KeyboardConfig) -> None:
        self.config = config
        self.gripper_closed = False
        self.intervene = False
        self._active_until: dict[str, float] = {}
        self._events: set[TeleopEvent] = set()

    def press(self, key: str, now_s: float) -> None:
        cfg = self.config
        if key in cfg.motion_keys:
            until = self._active_until.get(key, -np.inf)
            hold_s = cfg.repeat_hold_s if until > now_s else cfg.initial_hold_s
            self._active_until[key] = max(until, now_s + hold_s)
        elif key == cfg.gripper_key:
            self.gripper_closed = not self.gripper_closed
        elif key == cfg.intervene_key:
            self.intervene = not self.intervene
        elif key in cfg.event_keys:
            self._events.add(cfg.event_keys[key])

    def command(self, now_s: float) -> TeleopCommand:
        twist = np.zeros(6)
        for key, until in self._active_until.items():
            if until > now_s:
                axis, sign = self.config.motion_keys[key]
                twist[axis] += sign
        twist = np.clip(twist, -1.0, 1.0)
        twist[:3] *= self.config.linear_speed_mps
        twist[3:] *= self.config.angular_speed_radps
        events, self._events = frozenset(self._events), set()
        return TeleopCommand(
            timestamp_s=now_s,
            twist=twist,
            gripper_closed=self.gripper_closed,
            intervene=self.intervene,
            events=events,
        )

    def stop_all(self) -> None:
        self._active_until.clear()


class KeyboardTeleop(TeleopDevice):
    """Reads a terminal (default: stdin) in cbreak mode; restores it on disconnect."""

    def __init__(self, *, fd: int | None = None, config: KeyboardConfig | None = None) -> None:
        self.config = config or KeyboardConfig()
        self._fd_arg = fd
        self._fd: int | None = None
        self._saved_attrs: list | None = None
        self._was_blocking = True
        self._decoder = KeyDecoder()
        self._mapper = KeyboardMapper(self.config)
        self._pending_since_s: float | None = None

    def connect(self) -> None:
        if self._fd is not None:
            return
        fd = self._fd_arg if self._fd_arg is not None else sys.stdin.fileno()
        if not os.isatty(fd):
            raise RuntimeError(f"keyboard teleop needs a terminal; fd {fd} is not a tty")
        self._saved_attrs = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)  # keys arrive at once, unechoed; Ctrl-C still works
        self._was_blocking = os.get_blocking(fd)
        os.set_blocking(fd, False)
        self._fd = fd
        self._decoder = KeyDecoder()
        self._mapper = KeyboardMapper(self.config)
        self._pending_since_s = None
        log.info("keyboard teleop on fd %d (see robot_learning.hardware.keyboard for keys)", fd)

    def disconnect(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.set_blocking(fd, self._was_blocking)
        if self._saved_attrs is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, self._saved_attrs)

    def read(self) -> TeleopCommand:
        """Consume pending key bytes (never waits) and return the current command."""
        if self._fd is None:
            raise RuntimeError("keyboard teleop is not connected")
        data = b""
        while select.select([self._fd], [], [], 0.0)[0]:
            try:
                chunk = os.read(self._fd, 1024)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        now_s = time.time()
        keys: list[str] = []
        if data:
            keys = self._decoder.feed(data)
            self._pending_since_s = now_s if self._decoder.pending else None
        elif self._pending_since_s is not None and now_s - self._pending_since_s > _LONE_ESC_S:
            keys, self._pending_since_s = self._decoder.flush(), None
        for key in keys:
            if key == ESCAPE:
                self._mapper.stop_all()  # Escape: stop moving at once
            else:
                self._mapper.press(key, now_s)
        return self._mapper.command(now_s)
