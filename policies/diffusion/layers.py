"""The U-Net's 1D convolutions computed as one matrix product over unfolded windows.

Same modules, parameters and state dicts as ``nn.Conv1d`` / ``nn.ConvTranspose1d`` (a
checkpoint does not know the difference), the same sums in another order. Why: the U-Net's
sequences are 4 to 16 steps long while its weights are up to 2048 x 2048 x 5 (84 MB). On CPU
PyTorch sends such convolutions to oneDNN, which reorders the whole weight into its blocked
layout on every call and again for each backward pass, or to an im2col path that does the
same work in several pieces; the weight traffic, not the arithmetic, is what costs. Written
as ``linear(windows, weight.reshape(out, -1))`` the weight is read once, in place, by one
GEMM (forward) and two (backward). Measured on the bench preset (2 threads): see
``benchmarks/policy_speed.py`` and the README.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GemmConv1d(nn.Conv1d):
    """``nn.Conv1d`` (zero padding, no dilation or groups) as unfold + one GEMM."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (k,), (s,), (p,) = self.kernel_size, self.stride, self.padding
        if k == 1 and s == 1 and p == 0:
            windows = x.transpose(1, 2)  # (B, L, Cin)
        else:
            unfolded = F.pad(x, (p, p)).unfold(2, k, s)  # (B, Cin, L_out, k)
            windows = unfolded.transpose(1, 2).reshape(x.shape[0], unfolded.shape[2], -1)
        out = F.linear(windows, self.weight.reshape(self.out_channels, -1), self.bias)
        return out.transpose(1, 2).contiguous()  # (B, Cout, L_out)


class GemmConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` (no output padding, dilation or groups) as one GEMM that
    gives every input step's k output contributions, then ``fold`` adds the overlaps."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (k,), (s,), (p,) = self.kernel_size, self.stride, self.padding
        b, _, length = x.shape
        out_len = (length - 1) * s - 2 * p + k
        contributions = x.transpose(1, 2) @ self.weight.reshape(self.in_channels, -1)
        y = F.fold(
            contributions.transpose(1, 2), (1, out_len), (1, k), stride=(1, s), padding=(0, p)
        )  # (B, Cout, 1, L_out)
        y = y.reshape(b, self.out_channels, out_len)
        return y if self.bias is None else y + self.bias[:, None]
