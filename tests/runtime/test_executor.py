"""Chunk execution: interpolation at the control rate, latency compensation, re-planning,
temporal ensembling."""

from __future__ import annotations

import numpy as np
import pytest

from robot_learning.geometry import quat_angle_rad, quat_from_rotvec_xyzw
from robot_learning.runtime import ActionChunk, ChunkExecutor, ExecutionConfig

TOP_DOWN = np.array([1.0, 0.0, 0.0, 0.0])


def chunk(
    start_s: float, n: int = 10, dt: float = 0.1, x0: float = 0.0, gripper_at: int | None = None
) -> ActionChunk:
    times = start_s + dt * np.arange(n)
    positions = np.stack([x0 + 0.01 * np.arange(n), np.zeros(n), np.full(n, 0.3)], axis=1)
    quats = np.tile(TOP_DOWN, (n, 1))
    gripper = np.zeros(n)
    if gripper_at is not None:
        gripper[gripper_at:] = 1.0
    return ActionChunk(times, positions, quats, gripper)


def test_targets_are_interpolated_between_chunk_steps():
    c = chunk(1.0)
    target = c.target_at(1.05)
    assert target.position[0] == pytest.approx(0.005)
    assert c.target_at(0.5).position[0] == 0.0  # held before the start
    assert c.target_at(5.0).position[0] == pytest.approx(0.09)  # and after the end
    rotated = ActionChunk(
        np.array([0.0, 0.1]),
        np.zeros((2, 3)),
        np.stack([TOP_DOWN, quat_from_rotvec_xyzw([0, 0, 0.2]) * 1.0]),
        np.zeros(2),
    )
    mid = rotated.target_at(0.05).quaternion
    assert quat_angle_rad(mid, rotated.quaternions[0]) == pytest.approx(
        quat_angle_rad(mid, rotated.quaternions[1]), abs=1e-9
    )


def test_faster_playback_reaches_the_same_targets_sooner_and_replans_sooner():
    ex = ChunkExecutor(ExecutionConfig(execute_steps=4, speed=2.0))
    ex.add(chunk(1.0, gripper_at=6))
    assert ex.target(1.0).position[0] == 0.0  # anchored at the observation time
    assert ex.target(1.15).position[0] == pytest.approx(0.03)  # step 3, predicted for 1.3
    assert ex.target(1.3).gripper_closed and not ex.target(1.29).gripper_closed
    assert ex.target(9.0).position[0] == pytest.approx(0.09)  # the same last target
    assert not ex.needs_chunk(1.19) and ex.needs_chunk(1.2)  # 4 steps played in 0.2 s
    slower = ChunkExecutor(ExecutionConfig(execute_steps=4, speed=0.5))
    slower.add(chunk(0.0))
    assert slower.target(0.2).position[0] == pytest.approx(0.01)
    assert not slower.needs_chunk(0.79) and slower.needs_chunk(0.8)
    for bad in (0.0, -1.0, 5.0):
        with pytest.raises(ValueError, match="speed"):
            ExecutionConfig(speed=bad)


def test_gripper_switches_at_its_step_not_halfway():
    c = chunk(0.0, gripper_at=3)
    assert not c.target_at(0.29).gripper_closed
    assert c.target_at(0.30).gripper_closed


def test_executor_replans_after_execute_steps_and_skips_stale_actions():
    ex = ChunkExecutor(ExecutionConfig(execute_steps=4))
    assert ex.needs_chunk(0.0)
    ex.add(chunk(0.0))
    assert not ex.needs_chunk(0.39) and ex.needs_chunk(0.4)
    # A chunk predicted from an observation at 0.4 arrives late (at 0.47): its first
    # targets are in the past, so execution starts part-way in (latency compensation).
    ex.add(chunk(0.4, x0=1.0))
    assert ex.target(0.47).position[0] == pytest.approx(1.007)


def test_hold_mode_holds_each_step():
    ex = ChunkExecutor(ExecutionConfig(execute_steps=8, interpolate=False))
    ex.add(chunk(0.0))
    assert ex.target(0.19).position[0] == pytest.approx(0.01)


def test_temporal_ensembling_weights_older_chunks_more():
    ex = ChunkExecutor(ExecutionConfig(temporal_ensemble_k=0.5))
    ex.add(chunk(0.0, x0=0.0))
    assert ex.needs_chunk(0.1)  # every policy step
    ex.add(chunk(0.1, x0=1.0))
    # both cover t=0.1: chunk A says 0.01, chunk B says 1.0; weights exp(0), exp(-0.5)
    w = np.exp(-0.5 * np.arange(2))
    expected = (w[0] * 0.01 + w[1] * 1.0) / w.sum()
    assert ex.target(0.1).position[0] == pytest.approx(expected)
    # with k = 0 it is the plain mean
    flat = ChunkExecutor(ExecutionConfig(temporal_ensemble_k=0.0))
    flat.add(chunk(0.0, x0=0.0))
    flat.add(chunk(0.1, x0=1.0))
    assert flat.target(0.1).position[0] == pytest.approx((0.01 + 1.0) / 2)


def test_bad_chunks_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="positions"):
        ActionChunk(np.arange(3.0), np.zeros((3, 2)), np.tile(TOP_DOWN, (3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        ActionChunk(
            np.arange(2.0),
            np.array([[0, 0, np.nan], [0, 0, 0]]),
            np.tile(TOP_DOWN, (2, 1)),
            np.zeros(2),
        )
    with pytest.raises(ValueError, match="increase"):
        ActionChunk(np.zeros(2), np.zeros((2, 3)), np.tile(TOP_DOWN, (2, 1)), np.zeros(2))
    with pytest.raises(RuntimeError, match="before any chunk"):
        ChunkExecutor(ExecutionConfig()).target(0.0)


def test_latency_compensation_skips_what_passed_while_the_model_thought() -> None:
    """A chunk predicted at t=10.0 arrives at 10.3: compensated, the arm is sent the step
    meant for 10.3; uncompensated, the chunk's first step (the whole chunk runs 0.3 s late)."""
    times = 10.0 + 0.1 * np.arange(8)
    positions = np.stack([0.4 + 0.01 * np.arange(8), np.zeros(8), np.full(8, 0.3)], axis=1)
    chunk = ActionChunk(times, positions, np.tile([1.0, 0, 0, 0], (8, 1)), np.zeros(8))
    compensated = ChunkExecutor(ExecutionConfig(execute_steps=4))
    compensated.add(chunk, received_s=10.3)
    late = ChunkExecutor(ExecutionConfig(execute_steps=4, latency_compensation=False))
    late.add(chunk, received_s=10.3)
    np.testing.assert_allclose(compensated.target(10.3).position[0], 0.43)
    np.testing.assert_allclose(late.target(10.3).position[0], 0.40)
    assert compensated.needs_chunk(10.4) and not late.needs_chunk(10.4)
