"""MT-pi (Motion Track Policy) settings.

Defaults are the published sizes where jren03/mt_pi_codebase states them: one observation,
16 predicted and 14 executed track steps, 128-pixel images, the Diffusion Policy U-Net
(256, 512, 1024) with a 256-wide step embedding, 100 DDPM training steps and 16 DDIM
inference steps (squaredcos schedule, epsilon prediction, clipped samples), batch 128,
lr 1e-4 with cosine decay, no weight decay, gradient clip 5, EMA. Two departures, said where
they are: the image encoder is the project's ResNet-18 (GroupNorm; MT-pi's is an
ImageNet-pretrained ResNet-50, not installable here), and the image is 96x128 (4:3, as the
workcell's cameras) rather than 128x128.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from policies.config import NormMode, PolicyConfig
from robot_learning.track_geometry import ROTATION_FITS

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


@dataclass(frozen=True)
class MotionTrackConfig(PolicyConfig):
    name: ClassVar[str] = "mtpi"
    inference_fields: ClassVar[frozenset[str]] = frozenset({"num_inference_steps", "num_samples"})

    # PolicyConfig fields, re-defaulted to MT-pi's values (10 Hz steps).
    obs_horizon: int = 1
    horizon_s: float = 1.6  # 16 future track steps
    execute_s: float = 1.4  # 14 of them played before re-planning
    image_size: tuple[int, int] = (96, 128)
    crop_size: tuple[int, int] | None = (88, 118)  # random crop; keypoints shifted with it
    normalization: NormMode = "min_max"  # tracks in [-1, 1]: what clip_sample assumes
    lr: float = 1e-4
    lr_backbone: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float | None = 5.0
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    ema_decay: float | None = 0.9999
    batch_size: int = 128
    train_steps: int = 100_000

    # Denoising U-Net over the track horizon.
    down_dims: tuple[int, ...] = (256, 512, 1024)
    kernel_size: int = 5
    n_groups: int = 8
    diffusion_step_embed_dim: int = 256
    num_train_timesteps: int = 100
    num_inference_steps: int = 16  # DDIM
    # Draws denoised per prediction and averaged (each shared by the views): 1 is MT-pi's.
    # Inference only, like the DDIM steps: rl eval/deploy --samples may change it.
    num_samples: int = 1
    beta_schedule: str = "squaredcos_cap_v2"
    clip_sample: bool = True
    # Image features -> condition (MT-pi's feature compressor: in -> in/2 -> embed_dim).
    num_keypoints: int = 32  # spatial-softmax keypoints of the encoder
    embed_dim: int = 256
    # Human and robot samples: each source's share of a batch (MT-pi alternates them 1:1).
    human_fraction: float = 0.5
    # Mean/variance alignment of human and robot image embeddings (MT-pi's meanvar loss);
    # 0 turns it off.
    align_weight: float = 0.0
    # Inference: tracks -> end-effector targets (robot_learning.track_geometry).
    max_reprojection_px: float = 6.0
    # Fit the chunk's rotations with a cubic in time (benchmarks.track_geometry: at 1 px of
    # track noise the median rotation error halves, 6.2 -> 2.9 deg; noise-free bias < 2 deg).
    rotation_smoothing_degree: int | None = 3
    # What the keypoints' rigid fit may rotate: "full" (MT-pi's), "yaw" (about the base's
    # vertical only, for top-down tabletop grasps) or "none" (track_geometry.ROTATION_FITS).
    rotation_fit: str = "full"
    max_camera_shift_m: float = 0.05  # station camera vs the training calibration
    max_camera_turn_deg: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        if self.obs_horizon != 1:
            problems.append(
                f"obs_horizon={self.obs_horizon}: MT-pi conditions on the current "
                "image and keypoints only (1)"
            )
        if not self.down_dims or any(d % self.n_groups for d in self.down_dims):
            problems.append(f"n_groups={self.n_groups} must divide down_dims={self.down_dims}")
        if self.diffusion_step_embed_dim < 2 or self.diffusion_step_embed_dim % 2:
            problems.append(
                f"diffusion_step_embed_dim={self.diffusion_step_embed_dim} must be even"
            )
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            problems.append(
                f"num_inference_steps={self.num_inference_steps} must be in "
                f"[1, {self.num_train_timesteps}]"
            )
        if self.num_samples < 1:
            problems.append(f"num_samples={self.num_samples} must be >= 1")
        if self.rotation_fit not in ROTATION_FITS:
            problems.append(f"rotation_fit={self.rotation_fit!r} (one of {ROTATION_FITS})")
        if self.beta_schedule not in BETA_SCHEDULES:
            problems.append(f"beta_schedule={self.beta_schedule!r} (one of {BETA_SCHEDULES})")
        if not 0.0 <= self.human_fraction < 1.0:
            problems.append(f"human_fraction={self.human_fraction} must be in [0, 1)")
        if self.align_weight < 0:
            problems.append(f"align_weight={self.align_weight} must be >= 0")
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))
