"""1D temporal U-Net that denoises an action chunk, conditioned by FiLM on the diffusion step
and the encoded observations (Diffusion Policy's CNN variant).

Convolving over time (rather than attending) gives the smooth, locally consistent chunks the
paper credits for the CNN variant's robustness; FiLM injects the condition into every block.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from policies.diffusion.layers import GemmConv1d, GemmConvTranspose1d
from policies.layers import GroupNorm


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) diffusion steps -> (B, dim) sin/cos features at geometric frequencies."""
    half = dim // 2
    scale = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(-scale * torch.arange(half, device=t.device, dtype=torch.float32))
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ConvBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish, length-preserving."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.conv = GemmConv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        self.norm = GroupNorm(n_groups, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.mish(self.norm(self.conv(x)))


class FiLMResBlock(nn.Module):
    """Two conv blocks; the condition scales and shifts each channel between them."""

    def __init__(
        self, in_ch: int, out_ch: int, cond_dim: int, kernel_size: int, n_groups: int
    ) -> None:
        super().__init__()
        self.block1 = ConvBlock(in_ch, out_ch, kernel_size, n_groups)
        self.block2 = ConvBlock(out_ch, out_ch, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * out_ch))
        self.residual = GemmConv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.block1(x) * scale + bias
        return self.block2(h) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Noisy actions (B, H, Da), steps (B,), condition (B, C) -> (B, H, Da).

    Each of the ``len(down_dims) - 1`` downsamplings halves the length, so H is padded up to a
    multiple of ``2 ** (len(down_dims) - 1)`` internally and the output cropped back: chunk
    lengths that come from seconds at an arbitrary rate (``PolicyConfig.horizon_steps``) work.
    """

    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        down_dims: tuple[int, ...] = (512, 1024, 2048),
        kernel_size: int = 5,
        n_groups: int = 8,
        step_embed_dim: int = 128,
    ) -> None:
        super().__init__()
        if not down_dims:
            raise ValueError("down_dims must be non-empty")
        self.step_embed_dim = step_embed_dim
        self.multiple = 2 ** (len(down_dims) - 1)
        # Named "step_mlp", not "*encoder*": parameter_groups() treats "encoder" as the backbone.
        self.step_mlp = nn.Sequential(
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        cond_dim = step_embed_dim + global_cond_dim

        def res(i: int, o: int) -> FiLMResBlock:
            return FiLMResBlock(i, o, cond_dim, kernel_size, n_groups)

        widths = (action_dim, *down_dims)
        last = len(down_dims) - 1
        self.down = nn.ModuleList()
        for level, (i, o) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            shrink = GemmConv1d(o, o, 3, stride=2, padding=1) if level < last else nn.Identity()
            self.down.append(nn.ModuleList([res(i, o), res(o, o), shrink]))
        self.mid = nn.ModuleList([res(down_dims[-1], down_dims[-1]) for _ in range(2)])
        self.up = nn.ModuleList()
        for i, o in reversed(list(zip(down_dims[:-1], down_dims[1:], strict=True))):
            # Input: level-o output (o channels) concatenated with that level's skip (o); as
            # published, the first level's skip goes unused.
            grow = GemmConvTranspose1d(i, i, 4, stride=2, padding=1)
            self.up.append(nn.ModuleList([res(2 * o, i), res(i, i), grow]))
        self.final = nn.Sequential(
            ConvBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
            GemmConv1d(down_dims[0], action_dim, 1),
        )

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor
    ) -> torch.Tensor:
        b, horizon, _ = sample.shape
        if horizon < 1:
            raise ValueError(f"horizon H={horizon} must be >= 1")
        timestep = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(b)
        step = self.step_mlp(sinusoidal_embedding(timestep, self.step_embed_dim))
        cond = torch.cat([step, global_cond], dim=-1)

        padded = -(-horizon // self.multiple) * self.multiple
        x = F.pad(sample.transpose(1, 2), (0, padded - horizon))  # (B, Da, H')
        skips = []
        for block1, block2, shrink in self.down:
            x = block2(block1(x, cond), cond)
            skips.append(x)
            x = shrink(x)
        for block in self.mid:
            x = block(x, cond)
        for block1, block2, grow in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = grow(block2(block1(x, cond), cond))
        return self.final(x)[..., :horizon].transpose(1, 2)
