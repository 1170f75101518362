"""What every chunk-predicting network implements, so one trainer and one policy wrapper
serve ACT, Diffusion and what comes next.

Glossary (shapes): B batch, To observation horizon, K cameras, H action horizon (chunk
length), Ds state features, Da action features. Everything a model sees is already
encoded (6D rotations, ``policies.action_space``) and normalized (``policies.normalization``);
images are float, normalized per channel, cropped to ``features.crop_size``.

  images  (B, To, K, 3, h, w)   state (B, To, Ds)
  action  (B, H, Da)            action_is_pad (B, H) True where the chunk ran past the end
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import nn


def masked_mean(errors: torch.Tensor, action_is_pad: torch.Tensor) -> torch.Tensor:
    """Mean of (B, H, Da) per-element errors over the steps that are not padding."""
    valid = (~action_is_pad.bool()).unsqueeze(-1).to(errors.dtype)
    return (errors * valid).sum() / (valid.sum() * errors.shape[-1]).clamp(min=1.0)


@dataclass(frozen=True)
class ModelShapes:
    """The sizes a model is built for; from the store schema and the policy config."""

    num_cameras: int
    image_size: tuple[int, int]  # (h, w) after cropping: what the encoder sees
    state_dim: int
    action_dim: int
    obs_horizon: int
    horizon: int  # chunk length H


class ChunkModel(nn.Module, ABC):
    """A network that maps an observation window to a chunk of H future actions."""

    shapes: ModelShapes

    @abstractmethod
    def compute_loss(
        self,
        images: torch.Tensor,
        state: torch.Tensor,
        action: torch.Tensor,
        action_is_pad: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss (scalar) and named parts of it to log (detached scalars)."""

    @abstractmethod
    def predict(self, images: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(B, H, Da) normalized actions; deterministic given the module's RNG state."""

    def predict_samples(
        self, images: torch.Tensor, state: torch.Tensor, num_samples: int
    ) -> torch.Tensor:
        """(B, N, H, Da): N chunks drawn for each observation (stochastic models differ)."""
        return torch.stack([self.predict(images, state) for _ in range(num_samples)], dim=1)

    def parameter_groups(self, lr: float, lr_backbone: float, weight_decay: float) -> list[dict]:
        """Optimizer groups: image encoders may learn slower (ACT's lr_backbone)."""
        backbone = [p for n, p in self.named_parameters() if "encoder" in n and p.requires_grad]
        ids = {id(p) for p in backbone}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": rest, "lr": lr, "weight_decay": weight_decay}]
        if backbone:
            groups.append({"params": backbone, "lr": lr_backbone, "weight_decay": weight_decay})
        return groups
