"""The one conversion between the store's poses and what a model sees, for training and
inference alike.

Rotations enter and leave models as the continuous 6D representation (the first two columns
of the rotation matrix, Zhou et al. 2019): a quaternion's sign is arbitrary, so q and -q would
be two different regression targets for one orientation, and the sign convention differs
between the simulated and the real arm. Gram-Schmidt turns any predicted 6-vector back into
a rotation.

Feature layouts (D = 10):
  state  = position (3) + rot6d (6) + gripper width (1)
  action = position (3) + rot6d (6) + gripper command (1, 0 open .. 1 closed)
``absolute``: action poses in the base frame. ``relative``: position minus the current TCP
position (base frame), rotation R_target R_current^T (base frame), gripper unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from policies.config import ActionMode
from robot_learning.geometry import batch_matrix_from_quat, batch_quat_from_matrix

STATE_DIM = 10
ACTION_DIM = 10


matrix_from_quat = batch_matrix_from_quat  # (..., 4) xyzw -> (..., 3, 3), torch or numpy
quat_from_matrix = batch_quat_from_matrix  # (..., 3, 3) -> (..., 4) xyzw


def rot6d_from_matrix(mat: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): first column then second column."""
    return torch.cat([mat[..., :, 0], mat[..., :, 1]], dim=-1)


def matrix_from_rot6d(rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt; any non-degenerate 6-vector is valid."""
    a, b = rot6d[..., :3], rot6d[..., 3:]
    x = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b = b - (x * b).sum(-1, keepdim=True) * x
    y = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    z = torch.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


@dataclass(frozen=True)
class ActionSpace:
    """Encodes store rows into model features and decodes predictions back."""

    mode: ActionMode = "absolute"

    def encode_state(self, ee_pose: torch.Tensor, gripper_width: torch.Tensor) -> torch.Tensor:
        """ee_pose (..., 7) position + quaternion xyzw, gripper_width (...) -> (..., 10)."""
        rot = rot6d_from_matrix(matrix_from_quat(ee_pose[..., 3:7]))
        return torch.cat([ee_pose[..., :3], rot, gripper_width[..., None]], dim=-1)

    def encode_actions(self, actions: torch.Tensor, current_pose: torch.Tensor) -> torch.Tensor:
        """actions (B, H, 8) in the store's layout, current_pose (B, 7) -> (B, H, 10)."""
        position, rotation = actions[..., :3], matrix_from_quat(actions[..., 3:7])
        if self.mode == "relative":
            current_rot = matrix_from_quat(current_pose[:, 3:7])[:, None]
            position = position - current_pose[:, None, :3]
            rotation = rotation @ current_rot.transpose(-1, -2)
        return torch.cat([position, rot6d_from_matrix(rotation), actions[..., 7:8]], dim=-1)

    def decode_actions(self, features: torch.Tensor, current_pose: torch.Tensor) -> torch.Tensor:
        """Inverse of ``encode_actions``: (B, H, 10) -> (B, H, 8) store layout."""
        position, rotation = features[..., :3], matrix_from_rot6d(features[..., 3:9])
        if self.mode == "relative":
            current_rot = matrix_from_quat(current_pose[:, 3:7])[:, None]
            position = position + current_pose[:, None, :3]
            rotation = rotation @ current_rot
        quat = quat_from_matrix(rotation)
        gripper = features[..., 9:10].clamp(0.0, 1.0)
        return torch.cat([position, quat, gripper], dim=-1)
