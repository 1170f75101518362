"""SpaceMouse: report parsing and operator semantics on a report fixture, I/O over a socket."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from robot_learning.hardware.spacemouse import (
    R_BASE_DEVICE_OPERATOR_FACING,
    ButtonAction,
    ButtonTracker,
    SpaceMouse,
    SpaceMouseConfig,
    SpaceMouseMapper,
    SpaceMouseState,
    button_map,
    find_spacemice,
    parse_report,
)
from robot_learning.hardware.teleop import TeleopEvent

FIXTURE = Path(__file__).parent / "data" / "spacemouse_reports.txt"
LIN, ANG = 0.15, 0.6  # SpaceMouseConfig defaults
VX, VY, VZ, WX, WY, WZ = np.eye(6)


def load_fixture() -> list[tuple[float, str, bytes]]:
    rows = []
    for line in FIXTURE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            t_s, label, *hex_bytes = line.split()
            rows.append((float(t_s), label, bytes.fromhex("".join(hex_bytes))))
    return rows


def replay(config: SpaceMouseConfig) -> dict[str, tuple[np.ndarray, bool, bool, frozenset]]:
    state, tracker, mapper = SpaceMouseState(), ButtonTracker(config), SpaceMouseMapper(config)
    seen = {}
    for t_s, label, report in load_fixture():
        state = parse_report(report, state)
        tracker.update(state.buttons, t_s)
        if label == "-":
            continue  # events accumulate until the next labelled report
        seen[label] = (
            mapper.twist(state.axes),
            tracker.gripper_closed,
            tracker.intervene,
            tracker.take_events(),
        )
    return seen


def test_fixture_replay_gives_base_frame_twists_and_button_semantics():
    seen = replay(SpaceMouseConfig())
    expected_twists = {
        "rest": 0 * VX,
        "push_away": LIN * VX,  # away from the operator = robot forward
        "half_right": -LIN * (0.5 - 0.1) / 0.9 * VY,  # right = -y, deadzone rescaled
        "in_deadzone": 0 * VX,
        "twist_ccw": ANG * WZ,  # counter-clockwise seen from above = +yaw
        "released": 0 * VX,
        "up_and_tilt": LIN * VZ - ANG * WY,  # 6-axis report: up and a pitch
        "battery": LIN * VZ - ANG * WY,  # ignored report keeps the state
        "full_scale": -LIN * VX + LIN * VY,  # int16 extremes clipped to full speed
        "rest6": 0 * VX,
    }
    for label, twist in expected_twists.items():
        np.testing.assert_allclose(seen[label][0], twist, atol=1e-12, err_msg=label)
    twist, gripper, intervene, events = seen["tap_left"]
    assert gripper and not intervene and not events
    assert seen["hold_right"][1:3] == (True, True)
    assert seen["release_right"][1:3] == (True, False)
    assert seen["long_left_0"][3] == frozenset()  # 0.9 s: not yet long
    assert seen["long_left_1"][3] == frozenset({TeleopEvent.SUCCESS})
    assert seen["long_left_end"][1] is True  # a long press does not also toggle the gripper
    assert seen["long_left_end"][3] == frozenset()  # reported once


def test_button_map_and_mounting_are_configurable():
    config = SpaceMouseConfig(
        R_base_device=R_BASE_DEVICE_OPERATOR_FACING,
        intervene_button=None,
        tap_actions={0: ButtonAction.GRIPPER_TOGGLE, 1: ButtonAction.DISCARD},
        long_press_actions={0: ButtonAction.FAIL},
        max_linear_speed_mps=0.05,
    )
    seen = replay(config)
    np.testing.assert_allclose(seen["push_away"][0], -0.05 * VX, atol=1e-12)
    assert seen["hold_right"][2:] == (False, frozenset({TeleopEvent.DISCARD}))
    assert seen["long_left_1"][3] == frozenset({TeleopEvent.FAIL})
    with pytest.raises(ValueError, match="rotation"):
        SpaceMouseConfig(R_base_device=((1, 0, 0), (0, 1, 0), (0, 0, 2)))
    with pytest.raises(ValueError, match="deadzone"):
        SpaceMouseConfig(deadzone=1.0)
    with pytest.raises(ValueError, match="button 1"):
        SpaceMouseConfig(tap_actions={1: ButtonAction.START})


def test_parser_handles_short_and_unknown_reports():
    state = SpaceMouseState(axes=(1, 2, 3, 4, 5, 6), buttons=2)
    assert parse_report(b"", state) == state
    assert parse_report(bytes.fromhex("0100"), state) == state  # truncated
    assert parse_report(bytes.fromhex("04 01"), state) == state  # LED report
    assert parse_report(bytes.fromhex("02 ffff 0000 0100"), state).axes == (1, 2, 3, -1, 0, 1)
    assert parse_report(bytes.fromhex("03 00 10 00 00"), state).buttons == 1 << 12


_SOCKETS: list[socket.socket] = []  # our ends stay open for the test session


def seqpacket_mouse(config: SpaceMouseConfig) -> tuple[SpaceMouse, socket.socket]:
    """A SpaceMouse on one end of a SOCK_SEQPACKET pair: one send = one report, like hidraw."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    _SOCKETS.append(ours)
    return SpaceMouse(device=ours.fileno(), config=config), theirs


def reports(*labels: str) -> list[bytes]:
    rows = {label: report for _, label, report in load_fixture()}
    return [rows[label] for label in labels]


def test_device_reads_nonblocking_and_counts_taps_between_reads():
    mouse, device = seqpacket_mouse(SpaceMouseConfig())
    with mouse:
        done = threading.Event()
        threading.Thread(target=lambda: (mouse.read(), done.set()), daemon=True).start()
        assert done.wait(2.0), "read() blocked with no report pending"
        for report in reports("push_away"):
            device.send(report)
        np.testing.assert_allclose(mouse.read().twist, LIN * VX)
        device.send(bytes.fromhex("03 01 00"))  # press and release before the next read
        device.send(bytes.fromhex("03 00 00"))
        command = mouse.read()
        assert command.gripper_closed and not command.intervene
        assert abs(command.timestamp_s - time.time()) < 1.0
        device.close()
        with pytest.raises(ConnectionError, match="fd"):
            mouse.read()


def test_long_press_fires_while_held_without_new_reports():
    mouse, device = seqpacket_mouse(SpaceMouseConfig(long_press_s=0.05))
    with mouse:
        device.send(bytes.fromhex("03 01 00"))  # the device reports the press only once
        assert mouse.read().events == frozenset()
        time.sleep(0.1)
        assert mouse.read().events == frozenset({TeleopEvent.SUCCESS})
        assert not mouse.read().gripper_closed
    device.close()


def test_episode_map_gives_a_two_button_mouse_start_fail_success_and_the_gripper():
    """Collection with a two-button SpaceMouse alone: right tap START, right held FAIL, left
    tap gripper, left held SUCCESS; no intervene button (nobody to take over from)."""
    mouse, device = seqpacket_mouse(button_map("episode", long_press_s=0.3))
    right, left, up = "03 02 00", "03 01 00", "03 00 00"

    def press(button: str, held_s: float) -> set[TeleopEvent]:
        device.send(bytes.fromhex(button))
        events = set(mouse.read().events)
        time.sleep(held_s)
        events |= mouse.read().events
        device.send(bytes.fromhex(up))
        command = mouse.read()
        assert not command.intervene
        return events | command.events

    with mouse:
        assert press(right, 0.0) == {TeleopEvent.START}
        assert press(left, 0.0) == set() and mouse.read().gripper_closed
        assert press(right, 0.4) == {TeleopEvent.FAIL}
        assert press(left, 0.4) == {TeleopEvent.SUCCESS} and mouse.read().gripper_closed
    device.close()
    assert button_map("intervene") == SpaceMouseConfig()
    with pytest.raises(ValueError, match="button map must be one of"):
        button_map("collect")


def test_stale_device_zeroes_twist():
    mouse, device = seqpacket_mouse(SpaceMouseConfig(stale_after_s=0.05))
    with mouse:
        device.send(reports("push_away")[0])
        np.testing.assert_allclose(mouse.read().twist, LIN * VX)
        time.sleep(0.1)  # no reports while the cap is displaced: a wireless drop-out
        np.testing.assert_allclose(mouse.read().twist, np.zeros(6))
    device.close()


def test_find_spacemice_reads_hidraw_uevents(tmp_path: Path):
    def node(name: str, hid_id: str, hid_name: str) -> None:
        (tmp_path / name / "device").mkdir(parents=True)
        (tmp_path / name / "device" / "uevent").write_text(
            f"DRIVER=hid-generic\nHID_ID={hid_id}\nHID_NAME={hid_name}\nHID_PHYS=usb-1/input0\n"
        )

    node("hidraw0", "0003:0000046D:0000C52B", "Logitech USB Receiver")  # a mouse receiver
    node("hidraw1", "0003:0000256F:0000C635", "3Dconnexion SpaceMouse Compact")
    node("hidraw2", "0003:0000046D:0000C626", "3Dconnexion SpaceNavigator")
    (tmp_path / "hidraw3").mkdir()  # no uevent: skipped
    found = find_spacemice(tmp_path, dev_root=Path("/dev"))
    assert [(str(d.path), d.vendor_id, d.product_id) for d in found] == [
        ("/dev/hidraw1", 0x256F, 0xC635),
        ("/dev/hidraw2", 0x046D, 0xC626),
    ]
    with pytest.raises(FileNotFoundError, match="0x256f"):
        SpaceMouse(sysfs_root=tmp_path / "empty").connect()
