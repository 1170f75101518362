"""The one conversion between stored poses and model features (6D rotations)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.action_space import (
    ActionSpace,
    matrix_from_quat,
    matrix_from_rot6d,
    quat_from_matrix,
    rot6d_from_matrix,
)
from robot_learning.geometry import mat_from_quat_xyzw


def random_quats(n: int, seed: int = 0) -> torch.Tensor:
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return q / q.norm(dim=-1, keepdim=True)


def test_matrix_conversions_agree_with_mujoco_and_round_trip():
    q = random_quats(64)
    mats = matrix_from_quat(q)
    for i in range(0, 64, 7):
        np.testing.assert_allclose(mats[i].numpy(), mat_from_quat_xyzw(q[i].numpy()), atol=1e-12)
    back = quat_from_matrix(mats)
    np.testing.assert_allclose((back * q).sum(-1).abs().numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(
        matrix_from_rot6d(rot6d_from_matrix(mats)).numpy(), mats.numpy(), atol=1e-12
    )


def test_gram_schmidt_turns_any_6d_vector_into_a_rotation():
    mats = matrix_from_rot6d(torch.randn(32, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(32, 3, 3)
    np.testing.assert_allclose((mats @ mats.transpose(1, 2)).numpy(), eye.numpy(), atol=1e-12)
    np.testing.assert_allclose(torch.linalg.det(mats).numpy(), 1.0, atol=1e-12)


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_actions_round_trip_and_ignore_the_quaternion_sign(mode):
    space = ActionSpace(mode)
    q = random_quats(40, seed=1)
    actions = torch.cat(
        [
            torch.randn(5, 7, 3, dtype=torch.float64),
            q[:35].reshape(5, 7, 4),
            torch.randint(0, 2, (5, 7, 1)).double(),
        ],
        dim=-1,
    )
    current = torch.cat([torch.randn(5, 3, dtype=torch.float64), q[35:]], dim=-1)
    encoded = space.encode_actions(actions, current)
    assert encoded.shape == (5, 7, 10)
    decoded = space.decode_actions(encoded, current)
    np.testing.assert_allclose(decoded[..., :3].numpy(), actions[..., :3].numpy(), atol=1e-12)
    np.testing.assert_allclose(
        (decoded[..., 3:7] * actions[..., 3:7]).sum(-1).abs().numpy(), 1.0, atol=1e-12
    )
    np.testing.assert_array_equal(decoded[..., 7].numpy(), actions[..., 7].numpy())
    flipped = actions.clone()
    flipped[..., 3:7] *= -1  # the same orientations, the other hemisphere
    np.testing.assert_allclose(
        space.encode_actions(flipped, current).numpy(), encoded.numpy(), atol=1e-12
    )


def test_relative_actions_of_the_current_pose_are_identity():
    space = ActionSpace("relative")
    current = torch.cat([torch.randn(3, 3, dtype=torch.float64), random_quats(3, 2)], dim=-1)
    actions = torch.cat([current, torch.zeros(3, 1, dtype=torch.float64)], dim=-1)[:, None]
    encoded = space.encode_actions(actions, current)
    np.testing.assert_allclose(encoded[..., :3].numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        encoded[..., 3:9].numpy(), np.broadcast_to([1.0, 0, 0, 0, 1, 0], (3, 1, 6)), atol=1e-12
    )
