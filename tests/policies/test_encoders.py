"""The image encoder's output stride: finer feature maps for small CPU-sized images."""

import pytest
import torch

from policies.act import ACTConfig
from policies.encoders import ImageEncoder


@pytest.mark.parametrize(("stride", "cells"), [(32, (3, 3)), (16, (5, 6)), (8, (9, 11))])
def test_output_stride_sets_the_feature_map_size(stride: int, cells: tuple[int, int]) -> None:
    encoder = ImageEncoder(width=8, output_stride=stride)
    features = encoder.feature_map(torch.zeros(2, 3, 66, 88))
    assert features.shape == (2, 64, *cells)
    assert encoder(torch.zeros(2, 3, 66, 88)).shape == (2, encoder.out_dim)


def test_output_stride_keeps_the_published_weights() -> None:
    """Same parameters at every stride: a stride is a resolution choice, not another net."""
    counts = {
        s: sum(p.numel() for p in ImageEncoder(width=8, output_stride=s).parameters())
        for s in (8, 16, 32)
    }
    assert len(set(counts.values())) == 1


def test_unsupported_output_stride_is_named() -> None:
    with pytest.raises(ValueError, match="output_stride"):
        ImageEncoder(width=8, output_stride=4)
    with pytest.raises(ValueError, match="encoder_output_stride=12"):
        ACTConfig(encoder_output_stride=12)


@pytest.mark.parametrize(
    ("stages", "cells", "channels"), [(2, (12, 16), 16), (3, (6, 8), 32), (4, (3, 4), 64)]
)
def test_fewer_stages_end_the_trunk_at_a_finer_map(
    stages: int, cells: tuple[int, int], channels: int
) -> None:
    encoder = ImageEncoder(width=8, stages=stages)
    fmap = encoder.feature_map(torch.zeros(2, 3, 96, 128))
    assert fmap.shape == (2, channels, *cells)
    assert encoder(torch.zeros(2, 3, 96, 128)).shape == (2, 64)  # 32 keypoints


def test_unsupported_stage_count_is_named() -> None:
    with pytest.raises(ValueError, match="stages"):
        ImageEncoder(width=8, stages=5)
    with pytest.raises(ValueError, match="encoder_stages=0"):
        ACTConfig(encoder_stages=0)
