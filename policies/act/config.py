"""ACT's settings. Defaults are the published sizes (Zhao et al. 2023, ALOHA at 50 Hz);
CPU-sized presets live in ``policies.act``.

The chunk is given in seconds (``horizon_s``), so the published 100-step chunk at 50 Hz
becomes 20 steps on a 10 Hz store through ``PolicyConfig.horizon_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from policies.config import NormMode, PolicyConfig


@dataclass(frozen=True)
class ACTConfig(PolicyConfig):
    name: ClassVar[str] = "act"

    # PolicyConfig fields with ACT's published values
    obs_horizon: int = 1  # ACT sees the current observation only
    horizon_s: float = 2.0  # 100 steps at 50 Hz
    temporal_ensemble_k: float | None = 0.01
    image_size: tuple[int, int] = (240, 320)
    crop_size: tuple[int, int] | None = None  # ACT trains without random crops
    normalization: NormMode = "mean_std"
    encoder_width: int = 64
    lr: float = 1e-5
    lr_backbone: float = 1e-5
    weight_decay: float = 1e-4

    # transformer
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    n_encoder_layers: int = 4
    n_decoder_layers: int = 7  # every layer is used (the original code kept only the first)
    pre_norm: bool = False
    dropout: float = 0.1

    # CVAE
    use_vae: bool = True
    n_vae_encoder_layers: int = 4
    latent_dim: int = 32
    kl_weight: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        problems = []
        for field_name in (
            "dim_model",
            "n_heads",
            "dim_feedforward",
            "latent_dim",
            "encoder_width",
            "n_encoder_layers",
            "n_decoder_layers",
        ):
            value = getattr(self, field_name)
            if value < 1:
                problems.append(f"{field_name}={value} must be >= 1")
        if self.use_vae and self.n_vae_encoder_layers < 1:
            problems.append(
                f"n_vae_encoder_layers={self.n_vae_encoder_layers} must be >= 1 with use_vae"
            )
        if self.n_heads >= 1 and self.dim_model % self.n_heads:
            problems.append(
                f"dim_model={self.dim_model} is not divisible by n_heads={self.n_heads}"
            )
        if self.dim_model % 4:  # 2D sine embedding: sin and cos of y and x, each dim_model/4
            problems.append(f"dim_model={self.dim_model} must be a multiple of 4")
        if self.kl_weight < 0:
            problems.append(f"kl_weight={self.kl_weight} must be >= 0")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout={self.dropout} must be in [0, 1)")
        if self.temporal_ensemble_k is not None and self.temporal_ensemble_k < 0:
            problems.append(f"temporal_ensemble_k={self.temporal_ensemble_k} must be >= 0")
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))
