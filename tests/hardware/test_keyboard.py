"""Keyboard teleop: byte decoding, key timing, and the device on a real pty."""

from __future__ import annotations

import os
import termios
import threading
import time

import numpy as np
import pytest

from robot_learning.hardware.keyboard import (
    BACKSPACE,
    DELETE,
    ENTER,
    ESCAPE,
    LEFT,
    SPACE,
    UP,
    KeyboardConfig,
    KeyboardMapper,
    KeyboardTeleop,
    KeyDecoder,
)
from robot_learning.hardware.teleop import TeleopEvent

VX, VY, VZ, WX, WY, WZ = np.eye(6)


def test_decoder_turns_terminal_bytes_into_keys():
    decoder = KeyDecoder()
    assert decoder.feed(b"wA \x1b[A\x1bOD\x1b[3~\r\n\x7f\x08\t") == [
        "w",
        "a",
        SPACE,
        UP,
        LEFT,
        DELETE,
        ENTER,
        ENTER,
        BACKSPACE,
        BACKSPACE,
        "tab",
    ]
    assert decoder.feed(b"d\x1b[") == ["d"]  # arrow split across two reads
    assert decoder.pending
    assert decoder.feed(b"A") == [UP]
    assert decoder.feed(b"\x1b[15~s") == [ESCAPE, "s"]  # unknown (F5) skipped whole
    assert decoder.feed(b"\x1b") == [] and decoder.flush() == [ESCAPE]


def test_mapper_holds_keys_across_repeat_delay_and_stops_after_release():
    cfg = KeyboardConfig(linear_speed_mps=0.05, angular_speed_radps=0.3)
    m = KeyboardMapper(cfg)
    m.press("w", 0.0)
    np.testing.assert_allclose(m.command(0.5).twist, 0.05 * VX)  # bridging the repeat delay
    assert not m.command(0.61).twist.any()  # a tap is a nudge
    for t_s in np.arange(1.0, 2.0, 1 / 30):  # held: first press, then 30 Hz repeats
        m.press("w", t_s)
        m.press("j", t_s)
        np.testing.assert_allclose(m.command(t_s + 0.02).twist, 0.05 * VX + 0.3 * WZ)
    last_s = t_s
    assert not m.command(last_s + cfg.repeat_hold_s + 0.01).twist.any()
    m.press("a", 3.0)
    m.press("d", 3.0)  # opposite keys cancel
    m.press(UP, 3.0)
    np.testing.assert_allclose(m.command(3.1).twist, 0.3 * WY)


def test_mapper_buttons_and_events():
    m = KeyboardMapper(KeyboardConfig())
    for key in (SPACE, "tab", ENTER, "b"):
        m.press(key, 0.0)
    command = m.command(0.0)
    assert command.gripper_closed and command.intervene
    assert command.events == frozenset({TeleopEvent.SUCCESS, TeleopEvent.START})
    assert m.command(0.1).events == frozenset()  # reported once
    for key in (SPACE, "tab", BACKSPACE, "x"):
        m.press(key, 0.2)
    command = m.command(0.2)
    assert not command.gripper_closed and not command.intervene
    assert command.events == frozenset({TeleopEvent.FAIL, TeleopEvent.DISCARD})
    with pytest.raises(ValueError, match="bound twice"):
        KeyboardConfig(event_keys={"w": TeleopEvent.SUCCESS})
    with pytest.raises(ValueError, match="repeat_hold_s"):
        KeyboardConfig(initial_hold_s=0.05, repeat_hold_s=0.1)


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def test_device_on_pty_sets_cbreak_reads_without_blocking_and_restores(pty_pair):
    master, slave = pty_pair
    before = termios.tcgetattr(slave)
    with KeyboardTeleop(fd=slave) as keyboard:
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & termios.ICANON and not lflag & termios.ECHO
        assert lflag & termios.ISIG  # Ctrl-C still interrupts
        done = threading.Event()
        threading.Thread(target=lambda: (keyboard.read(), done.set()), daemon=True).start()
        assert done.wait(2.0), "read() blocked with no key pending"
        os.write(master, b"w\x1b[C")
        time.sleep(0.05)  # let the pty line discipline pass the bytes on
        command = keyboard.read()
        np.testing.assert_allclose(command.twist, 0.05 * VX - 0.3 * WZ)
        os.write(master, b" \r")
        time.sleep(0.05)
        command = keyboard.read()
        assert command.gripper_closed and command.events == frozenset({TeleopEvent.SUCCESS})
        os.write(master, b"\x1b")  # Escape alone: stop everything
        time.sleep(0.05)
        keyboard.read()  # a lone ESC could still be the start of an arrow key: wait
        time.sleep(0.1)
        assert not keyboard.read().twist.any()
    assert termios.tcgetattr(slave) == before


def test_non_terminal_input_is_refused():
    r, w = os.pipe()
    try:
        with pytest.raises(RuntimeError, match="not a tty"):
            KeyboardTeleop(fd=r).connect()
    finally:
        os.close(r)
        os.close(w)
