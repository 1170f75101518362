"""Drop-in replacements for two torch modules that are slow on this CPU; same state dicts.

``GroupNorm`` computes small inputs without a parallel region. The native CPU kernel opens a
parallel region for every call (one task per sample and group) however small the input. The
Diffusion U-Net at batch 1 normalizes 8,192-32,768 values 27 times per denoising step, and on
a shared 2-core machine each region waits for the second thread to be scheduled: median
20 us but mean 0.7-5 ms per call measured here. Below PyTorch's own grain size the same
formula in plain tensor ops runs on the calling thread; larger inputs take the native
kernel. (Tried on ACT's ResNet and LayerNorms at batch 1 too: no gain there, so they keep
torch's modules.)

``FastDropout`` draws its mask from 16-bit random integers. Torch's CPU dropout draws a
Bernoulli per element through MKL at ~6 ns each, on one thread whatever the thread count:
12% of ACT's training step at LeRobot's sizes on 2 threads. Two 16-bit draws per 32-bit
random integer take a third of that; the keep probability is rounded to 1/65536 (p = 0.1
becomes 0.100006). On a GPU torch's fused kernel is faster, and is used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the mask from 16-bit random integers (see above)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:  # torch's fused GPU kernels are the fast path there
        return F.dropout(x, p, training)
    n = x.numel()
    bits = torch.empty((n + 1) // 2, dtype=torch.int32, device=x.device)
    bits.random_(-(2**31), 2**31)  # every bit uniform: two 16-bit draws each
    drop_below = round(p * 65536) - 32768
    keep = bits.view(torch.int16)[:n].reshape(x.shape) >= drop_below
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


class FastDropout(nn.Dropout):
    """``nn.Dropout`` through ``fast_dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)
