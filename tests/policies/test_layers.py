"""The CPU layers (the U-Net's convolutions, GroupNorm of small inputs) compute what
torch's own modules compute, from the same state dict, values and gradients alike, so
checkpoints and training runs do not depend on which is used; FastDropout drops as dropout
does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from policies.diffusion.layers import GemmConv1d, GemmConvTranspose1d
from policies.layers import GRAIN_SIZE, FastDropout, GroupNorm, fast_dropout


def _same_function(ours: nn.Module, reference: nn.Module, x: torch.Tensor) -> None:
    ours.load_state_dict(reference.state_dict())  # the reference's checkpoint loads as is
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    y_ref, y_ours = reference(x_ref), ours(x_ours)
    assert y_ours.shape == y_ref.shape
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(y_ref)
    (y_ref * weights).sum().backward()
    (y_ours * weights).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
    for (name, p_ours), p_ref in zip(ours.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p_ours.grad, p_ref.grad, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "padding", "length", "batch"),
    [
        (8, 32, 5, 1, 2, 16, 3),  # the U-Net's first block
        (48, 48, 5, 1, 2, 4, 1),  # batch 1 at the bottom of the U-Net
        (32, 32, 3, 2, 1, 16, 2),  # the downsampling convolution
        (32, 32, 3, 2, 1, 7, 2),  # odd length
        (64, 16, 1, 1, 0, 8, 2),  # the residual / output projection
    ],
)
def test_gemm_conv1d_matches_conv1d(cin, cout, k, stride, padding, length, batch) -> None:
    torch.manual_seed(0)
    reference = nn.Conv1d(cin, cout, k, stride, padding)
    _same_function(
        GemmConv1d(cin, cout, k, stride, padding), reference, torch.randn(batch, cin, length)
    )


@pytest.mark.parametrize(("channels", "length", "batch"), [(32, 4, 2), (16, 8, 1), (24, 5, 3)])
def test_gemm_conv_transpose1d_matches(channels, length, batch) -> None:
    torch.manual_seed(0)
    reference = nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1)
    _same_function(
        GemmConvTranspose1d(channels, channels, 4, stride=2, padding=1),
        reference,
        torch.randn(batch, channels, length),
    )


@pytest.mark.parametrize("shape", [(1, 2048, 4), (2, 64, 16), (8, 512, 16), (2, 64, 6, 6)])
def test_group_norm_matches_below_and_above_the_grain_size(shape) -> None:
    torch.manual_seed(0)
    reference = nn.GroupNorm(8, shape[1])
    with torch.no_grad():  # non-trivial affine parameters
        reference.weight.normal_()
        reference.bias.normal_()
    x = torch.randn(*shape) * 3 + 1
    assert (x.numel() > GRAIN_SIZE) == (shape == (8, 512, 16))  # both paths are exercised
    _same_function(GroupNorm(8, shape[1]), reference, x)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_fast_dropout_is_dropout(p: float) -> None:
    """Keeps 1 - p of the values (to 1/65536), scales them by 1 / (1 - p), passes the
    gradient through the same mask, draws from torch's generator (so a seed, and a resumed
    run, repeat it) and is the identity in eval mode."""
    x = torch.randn(400, 1001, requires_grad=True)
    torch.manual_seed(3)
    y = fast_dropout(x, p)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.004
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / (1 - p))
    torch.manual_seed(3)
    torch.testing.assert_close(fast_dropout(x, p), y)
    assert not torch.equal(fast_dropout(x, p), y)  # a new mask each call
    module = FastDropout(p).eval()
    assert module(x) is x and fast_dropout(x, p, training=False) is x
    odd = torch.ones(3, 5, 7)  # an odd count of values: the last 16-bit draw is unused
    assert fast_dropout(odd, p).shape == odd.shape
