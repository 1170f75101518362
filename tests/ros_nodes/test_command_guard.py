"""The command guard's decisions, without DDS (the graph test checks it between processes)."""

from __future__ import annotations

from ros_nodes.command_guard import CommandGuard
from ros_nodes.runtime import Endpoint

TELEOP = Endpoint("01-aa", "/teleop", 100)
INTRUDER = Endpoint("01-bb", "/intruder", 200)


def test_one_fresh_publisher_is_obeyed_a_second_one_holds_naming_it():
    guard = CommandGuard(topic="/franka/target_pose", max_age_s=0.5)
    assert guard.check([TELEOP], 10.0, 10.05).accepted
    verdict = guard.check([TELEOP, INTRUDER], 10.1, 10.12)
    assert not verdict.accepted
    assert "/intruder" in verdict.error and "pid 200" in verdict.error
    assert "/teleop" in verdict.error.split("expected only")[1]
    assert not guard.check([INTRUDER, TELEOP], 10.2, 10.21).accepted
    assert guard.check([TELEOP], 10.3, 10.31).accepted  # the extra one left: resume
    assert guard.hold_reason is None


def test_stale_or_future_stamps_hold_and_name_the_publisher():
    guard = CommandGuard(topic="/franka/target_pose", max_age_s=0.5)
    stale = guard.check([TELEOP], 9.0, 10.0)
    assert not stale.accepted and "1.000 s old" in stale.error and "/teleop" in stale.error
    future = guard.check([TELEOP], 11.0, 10.0)
    assert not future.accepted and "in the future" in future.error
    assert guard.check([TELEOP], 10.0, 10.1).accepted
