"""Stamp alignment and the scripted operator: the library parts of the recorder graph."""

from __future__ import annotations

import pytest

from data_collection.alignment import FrameGaps, StampedBuffer
from robot_learning.hardware.scripted_teleop import ScriptedTeleop, Segment
from robot_learning.hardware.teleop import TeleopEvent


def test_latest_at_never_looks_into_the_future():
    buf: StampedBuffer[str] = StampedBuffer(horizon_s=1.0)
    for stamp, value in ((1.0, "a"), (1.2, "b"), (1.1, "late-arrival"), (1.5, "c")):
        buf.add(stamp, value)
    assert buf.latest_at(0.99) is None
    assert buf.latest_at(1.0) == (1.0, "a")
    assert buf.latest_at(1.15) == (1.1, "late-arrival")
    assert buf.latest_at(1.49) == (1.2, "b")
    assert [v for _, v in buf.between(1.0, 1.2)] == ["late-arrival", "b"]
    buf.add(3.0, "d")  # older than the horizon is dropped
    assert buf.latest_at(1.6) is None and len(buf) == 1


def test_nearest_pairs_a_stamp_with_the_closest_sample_on_either_side():
    buf: StampedBuffer[str] = StampedBuffer(horizon_s=1.0)
    assert buf.nearest(1.0) is None
    for stamp, value in ((1.0, "a"), (1.1, "b"), (1.3, "c")):
        buf.add(stamp, value)
    assert buf.nearest(0.5) == (1.0, "a")
    assert buf.nearest(1.04) == (1.0, "a") and buf.nearest(1.06) == (1.1, "b")
    assert buf.nearest(1.2) == (1.1, "b")  # a tie takes the earlier sample
    assert buf.nearest(1.29) == (1.3, "c") and buf.nearest(9.0) == (1.3, "c")


def test_frame_gaps_count_missing_frames():
    gaps = FrameGaps(nominal_period_s=0.1)
    for stamp in (0.0, 0.1, 0.2, 0.5, 0.6):
        gaps.add(stamp)
    assert (gaps.received, gaps.dropped) == (5, 2)


def test_scripted_operator_plays_episodes_with_one_start_and_one_success_each():
    now = [100.0]
    device = ScriptedTeleop(
        episodes=2,
        script=(Segment(0.5, (0.1, 0, 0, 0, 0, 0)), Segment(0.5, (0, 0, 0, 0, 0, 0), True)),
        pause_s=0.5,
        start_delay_s=0.2,
        clock=lambda: now[0],
    )
    device.connect()
    events, twists = [], []
    while now[0] < 103.3:
        command = device.read()
        events += [(round(now[0], 2), e) for e in command.events]
        twists.append((round(now[0], 2), command.twist[0], command.gripper_closed))
        now[0] += 0.02
    assert [e for _, e in events] == [TeleopEvent.START, TeleopEvent.SUCCESS] * 2
    assert [t for t, _ in events] == pytest.approx([100.2, 101.2, 101.7, 102.7], abs=0.03)
    assert device.finished
    moving = [t for t, vx, _ in twists if vx > 0]
    closed = [t for t, _, gripper in twists if gripper]
    for start in (100.2, 101.7):  # each episode: 0.5 s moving, then 0.5 s closing the gripper
        assert min(t for t in closed if t >= start) == pytest.approx(start + 0.5, abs=0.03)
    assert all(s - 0.03 <= t <= s + 0.53 for t in moving for s in [100.2 if t < 101.5 else 101.7])
    assert len(moving) == pytest.approx(2 * 0.5 / 0.02, abs=2)
