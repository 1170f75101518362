"""Image preprocessing shared by training and inference: resize, crop, normalize.

Frames arrive as stored (uint8). ``resize`` runs once per frame (at cache time in training,
per observation at inference) with the same antialiased filter, so the model sees identical
pixels in both. Random crops are the augmentation; inference takes the centre crop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 3, h, w), antialiased bilinear; a no-op at size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    out = F.interpolate(
        images.float(), size=size, mode="bilinear", antialias=True, align_corners=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def random_crop(
    images: torch.Tensor, size: tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B, ..., C, H, W) -> (B, ..., C, h, w): one random window per sample (shared across
    the sample's time steps and cameras, so they stay consistent)."""
    h, w = size
    height, width = images.shape[-2:]
    if (h, w) == (height, width):
        return images
    b = images.shape[0]
    top = torch.randint(0, height - h + 1, (b,), generator=generator)
    left = torch.randint(0, width - w + 1, (b,), generator=generator)
    rows = (top[:, None] + torch.arange(h)).to(images.device)  # (B, h)
    cols = (left[:, None] + torch.arange(w)).to(images.device)  # (B, w)
    lead = images.shape[1:-2]
    flat = images.reshape(b, -1, height, width)
    index_rows = rows[:, None, :, None].expand(b, flat.shape[1], h, width)
    picked = flat.gather(2, index_rows)
    index_cols = cols[:, None, None, :].expand(b, flat.shape[1], h, w)
    return picked.gather(3, index_cols).reshape(b, *lead, h, w)


def center_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    h, w = size
    height, width = images.shape[-2:]
    top, left = (height - h) // 2, (width - w) // 2
    return images[..., top : top + h, left : left + w]
