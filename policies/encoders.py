"""The project's own ResNet-18 image encoder: GroupNorm instead of BatchNorm (batch
statistics drift between training and a single-image deployment, and EMA weights break
BatchNorm), spatial-softmax keypoints or average pooling as the head.

torchvision cannot be imported beside the CPU torch here, so the network is written out;
``width`` scales every stage (64 = the published ResNet-18, 11.2 M parameters; smaller
widths for CPU-sized configs).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Pooling = Literal["spatial_softmax", "avg"]


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=max(1, channels // 16), num_channels=channels)


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.norm1 = _group_norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.norm2 = _group_norm(out_ch)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), _group_norm(out_ch))
            if stride != 1 or in_ch != out_ch
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


OUTPUT_STRIDES = (8, 16, 32)


class ResNet18Trunk(nn.Module):
    """Stem + ``stages`` (4 = the published network) stages of 2 basic blocks.

    ``output_stride`` 32 is the published network. 16 or 8 keep the last stages at full
    resolution instead of striding: at the small images CPU configs use, stride 32 leaves a
    3x3 feature map, too coarse for spatial-softmax keypoints to place a grasp. Fewer
    ``stages`` get a finer map the cheap way: the trunk stops after stage 2 (stride 8,
    ``2 * width`` channels) or 3 (stride 16), dropping the deep, coarse half.
    """

    def __init__(
        self, width: int = 64, in_channels: int = 3, output_stride: int = 32, stages: int = 4
    ) -> None:
        super().__init__()
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
        if stages not in (1, 2, 3, 4):
            raise ValueError(f"stages must be 1, 2, 3 or 4, got {stages}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            _group_norm(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        kept, ch, reached = [], width, 4
        for i, out_ch in enumerate((width, 2 * width, 4 * width, 8 * width)[:stages]):
            stride = 1 if i == 0 or reached >= output_stride else 2
            reached *= stride
            blocks = (BasicBlock(ch, out_ch, stride), BasicBlock(out_ch, out_ch, 1))
            kept.append(nn.Sequential(*blocks))
            ch = out_ch
        self.stages = nn.Sequential(*kept)
        self.out_channels = ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class SpatialSoftmax(nn.Module):
    """Expected (x, y) image coordinates of ``num_keypoints`` learned feature maps."""

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, num_keypoints, 1)
        self.num_keypoints = num_keypoints

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.project(features)
        b, k, h, w = maps.shape
        ys = torch.linspace(-1.0, 1.0, h, device=maps.device, dtype=maps.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=maps.device, dtype=maps.dtype)
        attention = torch.softmax(maps.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
        x = (attention.sum(dim=2) * xs).sum(dim=-1)
        y = (attention.sum(dim=3) * ys).sum(dim=-1)
        return torch.stack([x, y], dim=-1).reshape(b, 2 * k)


class ImageEncoder(nn.Module):
    """Image (N, 3, h, w), normalized -> feature vector (N, out_dim)."""

    def __init__(
        self,
        *,
        width: int = 64,
        pooling: Pooling = "spatial_softmax",
        num_keypoints: int = 32,
        out_dim: int | None = None,
        output_stride: int = 32,
        stages: int = 4,
    ) -> None:
        super().__init__()
        self.trunk = ResNet18Trunk(width, output_stride=output_stride, stages=stages)
        if pooling == "spatial_softmax":
            self.pool: nn.Module = SpatialSoftmax(self.trunk.out_channels, num_keypoints)
            pooled = 2 * num_keypoints
        elif pooling == "avg":
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            pooled = self.trunk.out_channels
        else:
            raise ValueError(f"pooling must be 'spatial_softmax' or 'avg', got {pooling!r}")
        self.head = (
            nn.Identity()
            if out_dim is None
            else nn.Sequential(nn.Linear(pooled, out_dim), nn.ReLU())
        )
        self.out_dim = pooled if out_dim is None else out_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.trunk(images)))

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, h/s, w/s), s the output stride: the last stage, for models that attend
        over it (ACT)."""
        return self.trunk(images)
