"""Diffusion Policy (CNN variant), registered as ``diffusion``.

Presets: ``default`` = the paper's sizes; ``sim`` = sized for the simulated workcell on a
2-core CPU; ``bench`` = LeRobot's diffusion defaults (96x96 images cropped to 84x84, one
encoder shared by all cameras), for a like-for-like speed comparison.
"""

from __future__ import annotations

from policies.diffusion.config import DiffusionConfig
from policies.diffusion.model import DiffusionModel
from policies.registry import PolicySpec, register_policy

# One training step (batch 32, 2 cameras x 2 observations at 88x120, AdamW) on 2 idle Xeon
# cores: ~0.32-0.42 s at encoder_width 16 (the encoders are ~85 % of the FLOPs), ~0.27 s at 8,
# ~0.75 s at 32; 16 keeps the encoder ACT's sim presets use, for a like-for-like comparison.
SIM = DiffusionConfig(
    image_size=(72, 96),
    crop_size=(66, 88),
    batch_size=32,
    train_steps=12000,
    encoder_width=16,
    # The full trunk (3x3 keypoint maps at 66x88): stopping after stage 2 (9x11 maps,
    # encoder_stages=2, 0.24 instead of 0.31 s a step) reached 32/50 on lift at 8,000 steps,
    # below this preset's 44/50 at 12,000 (README), so it stays an option, not the preset.
    # Targets relative to the current pose: measured on lift (50 unseen seeds) 41/50 at
    # 6,000 steps, 47/50 at 8,000 and 48/50 at 12,000, where absolute targets had 44/50 at
    # 12,000 (README); the wrist camera shows the turn left to the cube directly.
    action_mode="relative",
    down_dims=(64, 128, 256),
    diffusion_step_embed_dim=64,
    num_keypoints=32,
    # A ~100x smaller network trained for thousands, not hundreds of thousands, of steps:
    # 3e-4 converges in that budget where the paper's 1e-4 (for a 250M-parameter model)
    # lags; the short warm-up and EMA horizon match the short runs.
    lr=3e-4,
    lr_backbone=3e-4,
    warmup_steps=200,
    ema_decay=0.999,
)

BENCH = DiffusionConfig(
    image_size=(96, 96),
    crop_size=(84, 84),
    separate_encoders=False,  # LeRobot 0.4: use_separate_rgb_encoder_per_camera=False
)

SPEC = register_policy(
    PolicySpec(
        name="diffusion",
        config_class=DiffusionConfig,
        build_model=lambda cfg, shapes: DiffusionModel(cfg, shapes),
        presets={"default": DiffusionConfig(), "sim": SIM, "bench": BENCH},
    )
)

__all__ = ["DiffusionConfig", "DiffusionModel", "SPEC"]
