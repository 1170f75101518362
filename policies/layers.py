"""GroupNorm that computes small inputs without a parallel region.

Same module, parameters and state dict as ``nn.GroupNorm`` (a checkpoint does not know the
difference), the same formula. Why: the native CPU kernel opens a parallel region for every
call (one task per sample and group) however small the input. The Diffusion U-Net at batch 1
normalizes 8,192-32,768 values 27 times per denoising step, and on a shared 2-core machine
each region waits for the second thread to be scheduled: median 20 us but mean 0.7-5 ms per
call measured here. Below PyTorch's own grain size the same formula in plain tensor ops runs
on the calling thread; larger inputs take the native kernel. (Tried on ACT's ResNet and
LayerNorms at batch 1 too: no gain there, so they keep torch's modules.)
"""

from __future__ import annotations

import torch
from torch import nn

# PyTorch's threshold (at::internal::GRAIN_SIZE) below which element-wise ops and reductions
# run on one thread.
GRAIN_SIZE = 32768


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm``; inputs of at most ``GRAIN_SIZE`` values on one thread."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() > GRAIN_SIZE:
            return super().forward(x)
        grouped = x.reshape(x.shape[0], self.num_groups, -1)
        var, mean = torch.var_mean(grouped, dim=-1, unbiased=False, keepdim=True)
        normed = ((grouped - mean) * torch.rsqrt(var + self.eps)).reshape(x.shape)
        if not self.affine:
            return normed
        shape = (-1,) + (1,) * (x.dim() - 2)
        return torch.addcmul(self.bias.reshape(shape), normed, self.weight.reshape(shape))
