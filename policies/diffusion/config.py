"""Diffusion Policy (Chi et al. 2023, CNN variant) settings.

Defaults are the published sizes (ResNet-18 spatial-softmax encoders per camera, U-Net
512/1024/2048, 100 DDPM training steps, 10 DDIM inference steps, 2 observations, 16 predicted
and 8 executed actions at the paper's 10 Hz); the presets in ``policies.diffusion`` shrink them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from policies.config import NormMode, PolicyConfig

PredictionType = Literal["epsilon", "sample"]
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


@dataclass(frozen=True)
class DiffusionConfig(PolicyConfig):
    name: ClassVar[str] = "diffusion"
    inference_fields: ClassVar[frozenset[str]] = frozenset({"num_inference_steps", "num_samples"})

    # PolicyConfig fields, re-defaulted to the published values.
    obs_horizon: int = 2
    horizon_s: float = 1.6  # 16 steps at 10 Hz
    execute_s: float = 0.8  # 8 steps at 10 Hz
    image_size: tuple[int, int] = (240, 320)
    crop_size: tuple[int, int] | None = (216, 288)  # ~90 %, as the paper crops
    normalization: NormMode = "min_max"  # actions in [-1, 1]: what clip_sample assumes
    encoder_width: int = 64
    lr: float = 1e-4
    lr_backbone: float = 1e-4
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.95, 0.999)
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: int = 500
    ema_decay: float | None = 0.9999

    # Denoising U-Net.
    down_dims: tuple[int, ...] = (512, 1024, 2048)
    kernel_size: int = 5
    n_groups: int = 8  # GroupNorm groups in every U-Net conv block
    diffusion_step_embed_dim: int = 128
    # Noise schedule.
    num_train_timesteps: int = 100
    num_inference_steps: int = 10  # DDIM
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: PredictionType = "epsilon"
    clip_sample: bool = True  # clamp denoised actions to [-1, 1]
    # Chunks drawn per query, in one batch; with more than one the policy plays their medoid
    # (policies.network.medoid_chunk): a stray draw is outvoted, for N times the U-Net work
    # (push, 8 draws: 222/250 against 217/250, within the noise; README). Inference only:
    # evaluation and deployment may change it (rl eval --samples).
    num_samples: int = 1
    # Observation encoder.
    num_keypoints: int = 32  # spatial-softmax keypoints -> 2 * num_keypoints features
    separate_encoders: bool = True  # one ResNet per camera (published); False shares one

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if not self.down_dims or any(d < 1 for d in self.down_dims):
            problems.append(f"down_dims={self.down_dims} must be non-empty and positive")
        elif self.n_groups < 1 or any(d % self.n_groups for d in self.down_dims):
            problems.append(f"n_groups={self.n_groups} must divide down_dims={self.down_dims}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            problems.append(f"kernel_size={self.kernel_size} must be odd and positive")
        if self.diffusion_step_embed_dim < 2 or self.diffusion_step_embed_dim % 2:
            problems.append(
                f"diffusion_step_embed_dim={self.diffusion_step_embed_dim} must be even and >= 2"
            )
        if self.num_train_timesteps < 1:
            problems.append(f"num_train_timesteps={self.num_train_timesteps} must be >= 1")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            problems.append(
                f"num_inference_steps={self.num_inference_steps} must be in "
                f"[1, num_train_timesteps={self.num_train_timesteps}]"
            )
        if self.num_samples < 1:
            problems.append(f"num_samples={self.num_samples} must be >= 1")
        if self.beta_schedule not in BETA_SCHEDULES:
            problems.append(f"beta_schedule={self.beta_schedule!r} (one of {BETA_SCHEDULES})")
        if self.prediction_type not in ("epsilon", "sample"):
            problems.append(f"prediction_type={self.prediction_type!r} (epsilon or sample)")
        if self.num_keypoints < 1:
            problems.append(f"num_keypoints={self.num_keypoints} must be >= 1")
        if self.encoder_width < 1:
            problems.append(f"encoder_width={self.encoder_width} must be >= 1")
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))
