"""The trainable whole: stored rows in, loss or store-layout actions out.

``PolicyNetwork`` wraps a ``ChunkModel`` with everything that must be identical in training
and inference: the action space conversion (6D rotations, absolute/relative), normalization
buffers, image resize/crop/normalize. The trainer calls ``forward`` (so DDP wraps it); the
policy wrapper calls ``predict_actions``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from policies.action_space import ActionSpace
from policies.config import PolicyConfig
from policies.features import PolicyFeatures
from policies.images import center_crop, random_crop, resize
from policies.model import ChunkModel
from policies.normalization import NormalizationStats
from robot_learning.keys import ACTION, EE_POSE, GRIPPER_WIDTH
from robot_learning.store.sampler import ACTION_IS_PAD


class PolicyNetwork(nn.Module):
    def __init__(
        self,
        config: PolicyConfig,
        features: PolicyFeatures,
        model: ChunkModel,
        stats: NormalizationStats,
    ) -> None:
        super().__init__()
        self.config, self.features, self.model = config, features, model
        self.action_space = ActionSpace(config.action_mode)
        stats.register_buffers(self, config.normalization)

    # -- shared preprocessing --------------------------------------------------------------
    def prepare_images(
        self,
        frames: Mapping[str, torch.Tensor],
        *,
        train: bool,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """uint8 (B, To, 3, H, W) per camera -> float (B, To, K, 3, h, w), normalized."""
        stacked = []
        for cam in self.features.cameras:
            x = frames[cam]
            b, t = x.shape[:2]
            x = resize(x.reshape(b * t, *x.shape[2:]), self.config.image_size)
            stacked.append(x.reshape(b, t, *x.shape[1:]))
        images = torch.stack(stacked, dim=2).to(self.image_mean.device)
        if self.config.crop_size is not None:
            crop = (
                random_crop(images, self.config.crop_size, generator)
                if train
                else center_crop(images, self.config.crop_size)
            )
            images = crop
        images = images.float().div_(255.0)
        return (images - self.image_mean) / self.image_std

    def prepare_state(self, ee_pose: torch.Tensor, gripper_width: torch.Tensor) -> torch.Tensor:
        state = self.action_space.encode_state(ee_pose.float(), gripper_width.float())
        return (state - self.state_shift) / self.state_scale

    def prepare_actions(self, actions: torch.Tensor, current_pose: torch.Tensor) -> torch.Tensor:
        encoded = self.action_space.encode_actions(actions.float(), current_pose.float())
        return (encoded - self.action_shift) / self.action_scale

    # -- training ---------------------------------------------------------------------------
    def forward(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict]:
        """Loss of a sampler batch (raw store rows, images uint8)."""
        device = self.state_shift.device
        ee_pose = batch[EE_POSE].to(device)
        images = self.prepare_images(
            {c: batch[c] for c in self.features.cameras}, train=self.training, generator=generator
        )
        state = self.prepare_state(ee_pose, batch[GRIPPER_WIDTH].to(device))
        action = self.prepare_actions(batch[ACTION].to(device), ee_pose[:, -1])
        return self.model.compute_loss(images, state, action, batch[ACTION_IS_PAD].to(device))

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def predict_actions(
        self, frames: Mapping[str, torch.Tensor], ee_pose: torch.Tensor, gripper_width: torch.Tensor
    ) -> torch.Tensor:
        """(B, H, 8) actions in the store layout (float64) from raw observation windows:
        frames uint8 (B, To, 3, H, W) per camera, ee_pose (B, To, 7), gripper (B, To)."""
        device = self.state_shift.device
        ee_pose = ee_pose.to(device)
        images = self.prepare_images(frames, train=False)
        state = self.prepare_state(ee_pose, gripper_width.to(device))
        num_samples = getattr(self.config, "num_samples", 1)  # stochastic policies carry it
        if num_samples == 1:
            return self._decode(self.model.predict(images, state), ee_pose[:, -1])
        drawn = self.model.predict_samples(images, state, num_samples)  # (B, N, H, Da)
        b, n = drawn.shape[:2]
        actions = self._decode(drawn.flatten(0, 1), ee_pose[:, -1].repeat_interleave(n, dim=0))
        return medoid_chunk(actions.unflatten(0, (b, n)))

    def _decode(self, normalized: torch.Tensor, current_pose: torch.Tensor) -> torch.Tensor:
        features = normalized.double() * self.action_scale.double() + self.action_shift.double()
        return self.action_space.decode_actions(features, current_pose.double())


def medoid_chunk(chunks: torch.Tensor) -> torch.Tensor:
    """(B, N, H, 8) store-layout chunks -> (B, H, 8): per observation, the chunk whose TCP
    positions lie nearest the other draws' (mean distance over the chunk, summed over the
    draws). Why: a diffusion policy's draws are mostly alike, and the odd one that heads
    elsewhere is played for a whole execution horizon; on push the medoid of 8 was within
    the noise of one draw over 250 seeds (README), so the presets draw one."""
    positions = chunks[..., :3]
    distances = (positions[:, :, None] - positions[:, None]).norm(dim=-1).mean(dim=-1)
    pick = distances.sum(dim=-1).argmin(dim=-1)  # (B,)
    return chunks[torch.arange(chunks.shape[0], device=chunks.device), pick]
