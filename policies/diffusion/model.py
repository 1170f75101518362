"""Diffusion Policy: a conditional U-Net learns to remove noise from action chunks; acting
starts from Gaussian noise and denoises it with DDIM in a few steps.

Shapes follow ``policies.model``'s glossary. Actions are expected min-max normalized to
[-1, 1], which is what ``clip_sample`` clamps to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.diffusion.config import DiffusionConfig
from policies.diffusion.sampling import ddim_sample, make_schedulers
from policies.diffusion.unet import ConditionalUnet1D
from policies.encoders import ImageEncoder
from policies.model import ChunkModel, ModelShapes, masked_mean


def fill_padded(action: torch.Tensor, action_is_pad: torch.Tensor) -> torch.Tensor:
    """Replace padded steps by the nearest earlier valid one (hold the last action).

    The U-Net convolves over the whole chunk, so padded targets would leak into the loss at
    valid steps through the noisy input; holding the last action makes them irrelevant.
    """
    valid = ~action_is_pad
    steps = torch.arange(action.shape[1], device=action.device).expand_as(valid)
    last_valid = torch.where(valid, steps, -1).cummax(dim=1).values
    first_valid = valid.int().argmax(dim=1, keepdim=True).expand_as(last_valid)
    index = torch.where(last_valid < 0, first_valid, last_valid)
    return action.gather(1, index.unsqueeze(-1).expand_as(action))


class DiffusionModel(ChunkModel):
    """Observation window -> DDIM-denoised chunk of H actions."""

    def __init__(self, config: DiffusionConfig, shapes: ModelShapes) -> None:
        super().__init__()
        self.config = config
        self.shapes = shapes
        k = shapes.num_cameras
        n_encoders = k if config.separate_encoders else min(k, 1)
        self.encoders = nn.ModuleList(
            ImageEncoder(
                width=config.encoder_width,
                pooling="spatial_softmax",
                num_keypoints=config.num_keypoints,
                output_stride=config.encoder_output_stride,
                stages=config.encoder_stages,
            )
            for _ in range(n_encoders)
        )
        feat = 2 * config.num_keypoints
        self.global_cond_dim = shapes.obs_horizon * (k * feat + shapes.state_dim)
        self.unet = ConditionalUnet1D(
            action_dim=shapes.action_dim,
            global_cond_dim=self.global_cond_dim,
            down_dims=config.down_dims,
            kernel_size=config.kernel_size,
            n_groups=config.n_groups,
            step_embed_dim=config.diffusion_step_embed_dim,
        )
        self.train_scheduler, self.sample_scheduler = make_schedulers(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            prediction_type=config.prediction_type,
        )

    def encode_observations(self, images: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """images (B, To, K, 3, h, w), state (B, To, Ds) -> global condition (B, To*(K*F+Ds))."""
        b, to = state.shape[:2]
        parts = []
        if self.shapes.num_cameras:
            flat = images.flatten(0, 1)  # (B*To, K, 3, h, w)
            if self.config.separate_encoders:
                feats = [enc(flat[:, i]) for i, enc in enumerate(self.encoders)]
                parts.append(torch.stack(feats, dim=1).reshape(b, to, -1))
            else:
                parts.append(self.encoders[0](flat.flatten(0, 1)).reshape(b, to, -1))
        parts.append(state)
        return torch.cat(parts, dim=-1).reshape(b, -1)

    def denoising_loss(
        self,
        images: torch.Tensor,
        state: torch.Tensor,
        action: torch.Tensor,
        action_is_pad: torch.Tensor,
        noise: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """Masked MSE of the U-Net's prediction at given noise and steps (testable directly)."""
        action = fill_padded(action, action_is_pad)
        noisy = self.train_scheduler.add_noise(action, noise, timesteps)
        pred = self.unet(noisy, timesteps, self.encode_observations(images, state))
        target = noise if self.config.prediction_type == "epsilon" else action
        return masked_mean(F.mse_loss(pred, target, reduction="none"), action_is_pad)

    def compute_loss(
        self,
        images: torch.Tensor,
        state: torch.Tensor,
        action: torch.Tensor,
        action_is_pad: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        noise = torch.randn_like(action)
        timesteps = torch.randint(
            0, self.config.num_train_timesteps, (action.shape[0],), device=action.device
        )
        loss = self.denoising_loss(images, state, action, action_is_pad, noise, timesteps)
        return loss, {"mse": loss.detach()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return self.predict_samples(images, state, 1)[:, 0]

    @torch.no_grad()
    def predict_samples(
        self, images: torch.Tensor, state: torch.Tensor, num_samples: int
    ) -> torch.Tensor:
        """(B, N, H, Da): the observations are encoded once and N noises denoised in a batch."""
        cond = self.encode_observations(images, state).repeat_interleave(num_samples, dim=0)
        b = state.shape[0]
        sample = torch.randn(
            b * num_samples,
            self.shapes.horizon,
            self.shapes.action_dim,
            device=cond.device,
            dtype=cond.dtype,
        )
        sample = ddim_sample(
            self.unet, self.sample_scheduler, sample, cond, self.config.num_inference_steps
        )
        sample = sample.clamp(-1.0, 1.0) if self.config.clip_sample else sample
        return sample.unflatten(0, (b, num_samples))
