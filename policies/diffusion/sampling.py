"""Noise schedules and the DDIM loop, shared by the models that denoise with the
Diffusion-Policy U-Net: Diffusion Policy (action chunks) and MT-pi (motion tracks)."""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn


def make_schedulers(
    *, num_train_timesteps: int, beta_schedule: str, clip_sample: bool, prediction_type: str
) -> tuple[DDPMScheduler, DDIMScheduler]:
    """DDPM to noise training targets at any of ``num_train_timesteps`` steps; DDIM with the
    same betas to sample in a few steps (``set_alpha_to_one``: the last step lands on x0)."""
    schedule = dict(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        clip_sample=clip_sample,
        prediction_type=prediction_type,
    )
    return (
        DDPMScheduler(**schedule),
        DDIMScheduler(**schedule, set_alpha_to_one=True, steps_offset=0),
    )


def ddim_sample(
    unet: nn.Module,
    scheduler: DDIMScheduler,
    sample: torch.Tensor,
    cond: torch.Tensor,
    num_steps: int,
) -> torch.Tensor:
    """``sample`` (B, H, D), Gaussian noise, denoised in ``num_steps`` DDIM steps by ``unet``
    conditioned on ``cond`` (B, C)."""
    scheduler.set_timesteps(num_steps, device=cond.device)
    b = sample.shape[0]
    for t in scheduler.timesteps:
        sample = scheduler.step(unet(sample, t.expand(b), cond), t, sample).prev_sample
    return sample
