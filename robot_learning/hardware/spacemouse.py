"""3Dconnexion SpaceMouse read straight from Linux ``/dev/hidraw*`` (no driver, no extra deps).

Three layers, so the protocol and the operator semantics are testable without a device:

- :func:`parse_report`: bytes of one HID input report -> raw axes and button bits.
  Report 1 = translation (x, y, z int16 little-endian); report 2 = rotation (rx, ry, rz);
  newer devices (SpaceMouse Wireless/Pro Wireless/Enterprise) put all six axes in report 1
  (12 data bytes). Report 3 = button bitmask (little-endian, bit i = button i). Anything
  else (LED, battery 0x17, ...) is ignored. The device frame is 3Dconnexion's: x right,
  y towards the operator, z down, rotations right-handed about those axes.
- :class:`ButtonTracker`: taps, long presses and the held intervene button -> events.
- :class:`SpaceMouseMapper`: raw axes -> REP-103 base-frame twist (deadzone, scale, limits).

:class:`SpaceMouse` does the I/O: a non-blocking hidraw descriptor drained on every ``read``
(so ``read`` never waits for the device). The device streams reports while the cap is
displaced (about 60 Hz); when reports stop for ``stale_after_s`` with the cap displaced
(wireless drop-out) the twist goes to zero. Unplugging raises ``ConnectionError``.

Permissions: hidraw nodes are root-only by default; a udev rule such as
``KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0660", GROUP="plugdev"`` fixes that.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from robot_learning.hardware.teleop import TeleopCommand, TeleopDevice, TeleopEvent

log = logging.getLogger(__name__)

VENDOR_3DCONNEXION = 0x256F
VENDOR_LOGITECH = 0x046D
# 3Dconnexion products sold under Logitech's vendor id (Logitech also makes mice/keyboards).
LOGITECH_3DCONNEXION_PRODUCTS = frozenset(
    {0xC603, 0xC605, 0xC606, 0xC621, 0xC623, 0xC625, 0xC626, 0xC627, 0xC628, 0xC629, 0xC62B}
)
REPORT_TRANSLATION, REPORT_ROTATION, REPORT_BUTTONS = 1, 2, 3
_MAX_REPORTS_PER_READ = 512  # bounds the time one read() can spend draining

# Operator stands behind the robot, looking along the base +x axis: pushing the cap away
# moves the tool forward (+x), right moves it right (-y), pressing down moves it down (-z).
R_BASE_DEVICE_OPERATOR_BEHIND = ((0.0, -1.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, -1.0))
# Operator faces the robot (stands in front of it): the same turned 180 degrees about z.
R_BASE_DEVICE_OPERATOR_FACING = ((0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0))


@dataclass(frozen=True)
class SpaceMouseState:
    """Raw device state: axes (tx, ty, tz, rx, ry, rz) in device counts and button bits."""

    axes: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)
    buttons: int = 0


def parse_report(report: bytes, state: SpaceMouseState) -> SpaceMouseState:
    """Apply one HID input report (first byte = report id) to ``state``; unknown ids ignored."""
    if not report:
        return state
    report_id, payload = report[0], bytes(report[1:])
    if report_id == REPORT_TRANSLATION and len(payload) >= 12:
        return replace(state, axes=struct.unpack_from("<6h", payload))
    if report_id == REPORT_TRANSLATION and len(payload) >= 6:
        return replace(state, axes=struct.unpack_from("<3h", payload) + state.axes[3:])
    if report_id == REPORT_ROTATION and len(payload) >= 6:
        return replace(state, axes=state.axes[:3] + struct.unpack_from("<3h", payload))
    if report_id == REPORT_BUTTONS and payload:
        return replace(state, buttons=int.from_bytes(payload, "little"))
    return state


class ButtonAction(enum.Enum):
    GRIPPER_TOGGLE = "gripper_toggle"
    START = "start"
    SUCCESS = "success"
    FAIL = "fail"
    DISCARD = "discard"


_EVENT_OF = {
    ButtonAction.START: TeleopEvent.START,
    ButtonAction.SUCCESS: TeleopEvent.SUCCESS,
    ButtonAction.FAIL: TeleopEvent.FAIL,
    ButtonAction.DISCARD: TeleopEvent.DISCARD,
}


def _frozen(mapping: Mapping[int, ButtonAction]) -> Mapping[int, ButtonAction]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class SpaceMouseConfig:
    """Speeds, feel and button map. Buttons are bit indices of report 3 (0 = left).

    Defaults suit two-button models (Compact, Wireless, SpaceNavigator) in a deployment:
    left tap = gripper toggle, left held ``long_press_s`` = SUCCESS, right held = intervene
    (the right button is then the deadman, so it cannot carry a tap or a long press). For
    collection, where nobody intervenes, ``BUTTON_MAPS["episode"]`` gives the right button
    START (tap) and FAIL (held); see :func:`button_map`.
    """

    max_linear_speed_mps: float = 0.15
    max_angular_speed_radps: float = 0.6
    full_scale_counts: float = 350.0  # deflection that means full speed
    deadzone: float = 0.1  # fraction of full scale ignored around rest, per axis
    R_base_device: tuple[tuple[float, ...], ...] = R_BASE_DEVICE_OPERATOR_BEHIND
    intervene_button: int | None = 1  # held = operator wants control (deadman)
    tap_actions: Mapping[int, ButtonAction] = field(
        default_factory=lambda: _frozen({0: ButtonAction.GRIPPER_TOGGLE})
    )
    long_press_actions: Mapping[int, ButtonAction] = field(
        default_factory=lambda: _frozen({0: ButtonAction.SUCCESS})
    )
    long_press_s: float = 1.0
    stale_after_s: float | None = 0.5

    def __post_init__(self) -> None:
        R = np.asarray(self.R_base_device, dtype=np.float64)
        if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3)) or np.linalg.det(R) < 0:
            raise ValueError(f"R_base_device must be a 3x3 rotation, got {self.R_base_device}")
        for name in (
            "max_linear_speed_mps",
            "max_angular_speed_radps",
            "full_scale_counts",
            "long_press_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"SpaceMouseConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(f"SpaceMouseConfig.deadzone must be in [0, 1), got {self.deadzone}")
        if self.intervene_button is not None and self.intervene_button in self.tap_actions:
            raise ValueError(
                f"button {self.intervene_button} is the intervene button and also has a tap action"
            )
        object.__setattr__(self, "tap_actions", _frozen(self.tap_actions))
        object.__setattr__(self, "long_press_actions", _frozen(self.long_press_actions))


BUTTON_MAPS = {
    # deployment: the right button is held to take over from the policy
    "intervene": {},
    # collection and human video: nobody to take over from, so the right button runs episodes
    "episode": {
        "intervene_button": None,
        "tap_actions": {0: ButtonAction.GRIPPER_TOGGLE, 1: ButtonAction.START},
        "long_press_actions": {0: ButtonAction.SUCCESS, 1: ButtonAction.FAIL},
    },
}


def button_map(name: str, **overrides: object) -> SpaceMouseConfig:
    """The SpaceMouseConfig of a named two-button map (``BUTTON_MAPS``).

    ``intervene``: left tap gripper, left held SUCCESS, right held intervene.
    ``episode``: left tap gripper, left held SUCCESS, right tap START, right held FAIL.
    """
    if name not in BUTTON_MAPS:
        raise ValueError(
            f"SpaceMouse button map must be one of {sorted(BUTTON_MAPS)}, got {name!r}"
        )
    return SpaceMouseConfig(**{**BUTTON_MAPS[name], **overrides})  # type: ignore[arg-type]


class ButtonTracker:
    """Turns button bitmasks over time into taps, long presses and the held intervene state.

    A button with a long-press action fires its tap action on release (if released before
    ``long_press_s``); one without fires on press, with no delay.
    """

    def __init__(self, config: SpaceMouseConfig) -> None:
        self.config = config
        self.gripper_closed = False
        self.intervene = False
        self._buttons = 0
        self._pressed_at: dict[int, float] = {}
        self._long_fired: set[int] = set()
        self._pending: set[TeleopEvent] = set()

    def update(self, buttons: int, now_s: float) -> None:
        """Feed the current bitmask (call on every button report and on every read)."""
        changed = buttons ^ self._buttons
        for bit in range(max(buttons.bit_length(), self._buttons.bit_length())):
            if not changed >> bit & 1:
                continue
            if buttons >> bit & 1:
                self._on_press(bit, now_s)
            else:
                self._on_release(bit, now_s)
        self._buttons = buttons
        for bit, t_s in self._pressed_at.items():
            action = self.config.long_press_actions.get(bit)
            if action and bit not in self._long_fired and now_s - t_s >= self.config.long_press_s:
                self._long_fired.add(bit)
                self._apply(action)
        ib = self.config.intervene_button
        self.intervene = ib is not None and bool(buttons >> ib & 1)

    def take_events(self) -> frozenset[TeleopEvent]:
        events, self._pending = frozenset(self._pending), set()
        return events

    def _on_press(self, bit: int, now_s: float) -> None:
        self._pressed_at[bit] = now_s
        if bit not in self.config.long_press_actions and bit in self.config.tap_actions:
            self._apply(self.config.tap_actions[bit])

    def _on_release(self, bit: int, now_s: float) -> None:
        self._pressed_at.pop(bit, None)
        fired_long = bit in self._long_fired
        self._long_fired.discard(bit)
        if bit in self.config.long_press_actions and not fired_long:
            tap = self.config.tap_actions.get(bit)
            if tap is not None:
                self._apply(tap)

    def _apply(self, action: ButtonAction) -> None:
        if action is ButtonAction.GRIPPER_TOGGLE:
            self.gripper_closed = not self.gripper_closed
        else:
            self._pending.add(_EVENT_OF[action])


class SpaceMouseMapper:
    """Raw device axes -> base-frame twist (m/s, rad/s)."""

    def __init__(self, config: SpaceMouseConfig) -> None:
        self.config = config
        self._R = np.asarray(config.R_base_device, dtype=np.float64)

    def normalized(self, axes: tuple[int, ...]) -> np.ndarray:
        """Counts -> [-1, 1] per axis with the deadzone removed (continuous at its edge)."""
        n = np.clip(np.asarray(axes, dtype=np.float64) / self.config.full_scale_counts, -1, 1)
        dz = self.config.deadzone
        return np.sign(n) * np.maximum(np.abs(n) - dz, 0.0) / (1.0 - dz)

    def twist(self, axes: tuple[int, ...]) -> np.ndarray:
        n = self.normalized(axes)
        return np.concatenate(
            [
                self.config.max_linear_speed_mps * (self._R @ n[:3]),
                self.config.max_angular_speed_radps * (self._R @ n[3:]),
            ]
        )


@dataclass(frozen=True)
class HidrawDevice:
    path: Path
    vendor_id: int
    product_id: int
    name: str


def find_spacemice(
    sysfs_root: Path = Path("/sys/class/hidraw"), dev_root: Path = Path("/dev")
) -> list[HidrawDevice]:
    """hidraw nodes whose uevent names a 3Dconnexion device (vendor 0x256f, or Logitech's)."""
    found = []
    for node in sorted(sysfs_root.glob("hidraw*")):
        try:
            fields = dict(
                line.split("=", 1)
                for line in (node / "device" / "uevent").read_text().splitlines()
                if "=" in line
            )
            _bus, vendor, product = (int(x, 16) for x in fields["HID_ID"].split(":"))
        except (OSError, KeyError, ValueError):
            continue
        name = fields.get("HID_NAME", "")
        if vendor == VENDOR_3DCONNEXION or (
            vendor == VENDOR_LOGITECH
            and (product in LOGITECH_3DCONNEXION_PRODUCTS or "3Dconnexion" in name)
        ):
            found.append(HidrawDevice(dev_root / node.name, vendor, product, name))
    return found


class SpaceMouse(TeleopDevice):
    """A SpaceMouse as a TeleopDevice. ``device``: hidraw path, an open fd, or None (find)."""

    def __init__(
        self,
        *,
        device: str | Path | int | None = None,
        config: SpaceMouseConfig | None = None,
        sysfs_root: Path = Path("/sys/class/hidraw"),
    ) -> None:
        self.config = config or SpaceMouseConfig()
        self._device = device
        self._sysfs_root = sysfs_root
        self._fd: int | None = None
        self._owns_fd = False
        self.path: str = "" if device is None else str(device)
        self._reset()

    def _reset(self) -> None:
        self.state = SpaceMouseState()
        self._mapper = SpaceMouseMapper(self.config)
        self._buttons = ButtonTracker(self.config)
        self._last_report_s = time.time()
        self._stale_warned = False

    def connect(self) -> None:
        if self._fd is not None:
            return
        if isinstance(self._device, int):
            self._fd, self._owns_fd, self.path = self._device, False, f"fd {self._device}"
            os.set_blocking(self._fd, False)
        else:
            path = Path(self._device) if self._device is not None else self._discover()
            try:
                self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except PermissionError as exc:
                raise PermissionError(
                    f"SpaceMouse {path}: permission denied; add a udev rule giving your user "
                    f"access to hidraw devices of vendor 256f/046d (see module docstring)"
                ) from exc
            self._owns_fd, self.path = True, str(path)
        self._reset()
        log.info("SpaceMouse on %s", self.path)

    def _discover(self) -> Path:
        mice = find_spacemice(self._sysfs_root)
        if not mice:
            raise FileNotFoundError(
                f"no 3Dconnexion device (vendor 0x256f/0x046d) among {self._sysfs_root}/hidraw*"
            )
        if len(mice) > 1:
            log.warning("several SpaceMice %s; using %s", [str(m.path) for m in mice], mice[0].path)
        return mice[0].path

    def disconnect(self) -> None:
        if self._fd is None:
            return
        if self._owns_fd:
            os.close(self._fd)
        self._fd = None

    def read(self) -> TeleopCommand:
        """Drain pending reports (never waits) and return the current command."""
        if self._fd is None:
            raise RuntimeError("SpaceMouse is not connected")
        for _ in range(_MAX_REPORTS_PER_READ):
            try:
                report = os.read(self._fd, 64)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.ENODEV, errno.EIO):
                    raise ConnectionError(f"SpaceMouse {self.path} disconnected") from exc
                raise
            if not report:  # EOF: the other end went away
                raise ConnectionError(f"SpaceMouse {self.path} disconnected (end of stream)")
            self._on_report(report, time.time())
        now_s = time.time()
        self._check_stale(now_s)
        self._buttons.update(self.state.buttons, now_s)
        return TeleopCommand(
            timestamp_s=now_s,
            twist=self._mapper.twist(self.state.axes),
            gripper_closed=self._buttons.gripper_closed,
            intervene=self._buttons.intervene,
            events=self._buttons.take_events(),
        )

    def _on_report(self, report: bytes, now_s: float) -> None:
        self.state = parse_report(report, self.state)
        self._last_report_s = now_s
        self._stale_warned = False
        if report[0] == REPORT_BUTTONS:  # every transition, so fast taps between reads count
            self._buttons.update(self.state.buttons, now_s)

    def _check_stale(self, now_s: float) -> None:
        limit = self.config.stale_after_s
        if limit is None or not any(self.state.axes) or now_s - self._last_report_s < limit:
            return
        if not self._stale_warned:
            log.warning(
                "SpaceMouse %s: no report for %.2f s with the cap displaced; zeroing the twist",
                self.path,
                now_s - self._last_report_s,
            )
            self._stale_warned = True
        self.state = replace(self.state, axes=(0, 0, 0, 0, 0, 0))
