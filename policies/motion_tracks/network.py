"""The trainable whole for MT-pi: dataset batches in, loss or pixel tracks out.

Everything that must match between training and inference lives here: resizing, the crop
(random in training, centre at inference, with the keypoints moved by the same offset),
pixel <-> model coordinates, and the normalization buffers (so a checkpoint carries the
statistics it was trained with).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from policies.images import resize
from policies.motion_tracks.config import MotionTrackConfig
from policies.motion_tracks.data import (
    NUM_POINTS,
    TrackFeatures,
    encode_targets,
    from_model_coords,
)
from policies.motion_tracks.model import MotionTrackModel
from policies.normalization import NormalizationStats


class TrackNetwork(nn.Module):
    def __init__(
        self, config: MotionTrackConfig, features: TrackFeatures, stats: NormalizationStats
    ) -> None:
        super().__init__()
        self.config, self.features = config, features
        self.model = MotionTrackModel(
            config,
            num_views=len(features.cameras),
            num_points=NUM_POINTS,
            horizon=config.horizon_steps(features.rate_hz),
        )
        stats.register_buffers(self, config.normalization)

    # -- shared preprocessing --------------------------------------------------------------
    def prepare_images(
        self,
        images: torch.Tensor,
        view: torch.Tensor,
        *,
        train: bool,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 (B, 3, H, W) -> normalized float (B, 3, h, w) and the crop offsets (B, 2)
        (left, top) in resized pixels (None: centre crop)."""
        images = resize(images, self.config.image_size)
        offsets = None
        if self.config.crop_size is not None:
            ch, cw = self.config.crop_size
            h, w = self.config.image_size
            if train:
                left = torch.randint(0, w - cw + 1, (len(images),), generator=generator)
                top = torch.randint(0, h - ch + 1, (len(images),), generator=generator)
                images = torch.stack(
                    [
                        img[:, t : t + ch, s : s + cw]
                        for img, s, t in zip(images, left, top, strict=True)
                    ]
                )
                offsets = torch.stack([left, top], dim=1).float()
            else:
                t, s = (h - ch) // 2, (w - cw) // 2
                images = images[..., t : t + ch, s : s + cw]
        device = self.image_mean.device
        images = images.to(device).float().div_(255.0)
        view = view.to(device).long()
        return (images - self.image_mean[view]) / self.image_std[view], offsets

    # -- training ---------------------------------------------------------------------------
    def forward(
        self, batch: Mapping[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict]:
        device = self.state_shift.device
        images, offsets = self.prepare_images(
            batch["image"], batch["view"], train=self.training, generator=generator
        )
        current, target = encode_targets(dict(batch), self.features, self.config, offsets)
        current = (current.flatten(1).to(device) - self.state_shift) / self.state_scale
        target = (target.to(device) - self.action_shift) / self.action_scale
        valid = batch["valid"].to(device).float()  # (B, H, P)
        mask = torch.cat(
            [valid.repeat_interleave(2, dim=-1), torch.ones_like(valid[..., :2])], dim=-1
        )
        return self.model.compute_loss(
            images, current, batch["view"].to(device), target, mask, batch["is_human"].to(device)
        )

    # -- inference --------------------------------------------------------------------------
    @torch.no_grad()
    def predict_tracks(
        self, images: torch.Tensor, current: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One sample per view, in ``features.cameras`` order: images uint8 (K, 3, H, W) as
        stored, current points (K, P, 2) pixels -> future tracks (K, H, P, 2) pixels, grasp
        and terminal (K, H) in [0, 1]."""
        device = self.state_shift.device
        k = len(self.features.cameras)
        view = torch.arange(k)
        prepared, _ = self.prepare_images(images, view, train=False)
        batch = {
            "current": current.float(),
            "tracks": current[:, None].float(),
            "grasp": torch.zeros(k, 1),
            "terminal": torch.zeros(k, 1),
            "view": view,
        }
        coords, _ = encode_targets(batch, self.features, self.config, None)
        state = (coords.flatten(1).to(device) - self.state_shift) / self.state_scale
        out = self.model.predict(
            prepared, state, view.to(device), shared_noise=True, samples=self.config.num_samples
        )
        out = out.double() * self.action_scale.double() + self.action_shift.double()
        deltas = out[..., : 2 * NUM_POINTS].reshape(k, -1, NUM_POINTS, 2)
        future = coords.double().to(device)[:, None] + deltas
        pixels = torch.stack(
            [
                from_model_coords(future[i], tuple(shape[:2]), self.config)
                for i, shape in enumerate(self.features.image_shapes)
            ]
        )
        flags = out[..., 2 * NUM_POINTS :].clamp(0.0, 1.0)
        return pixels.cpu(), flags[..., 0].cpu(), flags[..., 1].cpu()
