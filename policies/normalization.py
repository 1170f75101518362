"""Normalization of model features, from the store's statistics.

Images: per-channel mean/std of the camera keys, as the store computes and saves them
(``robot_learning.store.normalization.stats_for``). State and action *features* (6D
rotations, relative or absolute targets) are what the model regresses, so their statistics
are taken over the training windows after encoding; positions and gripper values in them
are the store's rows, unchanged. Both end up as buffers of the network, so a checkpoint
carries exactly the statistics it was trained with (and ``normalization.json`` shows them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from policies.config import NormMode

MIN_SCALE = 1e-4  # a feature that never varies (e.g. a fixed rotation axis) is not blown up


@dataclass(frozen=True)
class FeatureStats:
    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]

    @classmethod
    def of(cls, values: np.ndarray) -> FeatureStats:
        flat = np.asarray(values, dtype=np.float64).reshape(-1, values.shape[-1])
        return cls(
            flat.mean(0).tolist(), flat.std(0).tolist(), flat.min(0).tolist(), flat.max(0).tolist()
        )

    def shift_scale(self, mode: NormMode) -> tuple[torch.Tensor, torch.Tensor]:
        """x_normalized = (x - shift) / scale."""
        if mode == "mean_std":
            shift, scale = np.asarray(self.mean), np.asarray(self.std)
        elif mode == "min_max":  # to [-1, 1]
            lo, hi = np.asarray(self.min), np.asarray(self.max)
            shift, scale = (hi + lo) / 2.0, (hi - lo) / 2.0
        else:
            raise ValueError(f"unknown normalization {mode!r}")
        return (
            torch.tensor(shift, dtype=torch.float32),
            torch.tensor(np.maximum(scale, MIN_SCALE), dtype=torch.float32),
        )


@dataclass(frozen=True)
class NormalizationStats:
    state: FeatureStats
    action: FeatureStats
    image_mean: list[list[float]]  # (K, 3) per camera, per channel, pixel values in [0, 1]
    image_std: list[list[float]]

    def register_buffers(self, module: torch.nn.Module, mode: NormMode) -> None:
        """The statistics as ``module``'s buffers, so its weights carry them and ``.to()``
        moves them: ``state_shift``/``state_scale`` and ``action_shift``/``action_scale``
        (x_normalized = (x - shift) / scale), ``image_mean``/``image_std`` (K, 3, 1, 1)."""
        state_shift, state_scale = self.state.shift_scale(mode)
        action_shift, action_scale = self.action.shift_scale(mode)
        module.register_buffer("state_shift", state_shift)
        module.register_buffer("state_scale", state_scale)
        module.register_buffer("action_shift", action_shift)
        module.register_buffer("action_scale", action_scale)
        mean = torch.tensor(self.image_mean, dtype=torch.float32)[:, :, None, None]
        std = torch.tensor(self.image_std, dtype=torch.float32).clamp_min(1e-3)[:, :, None, None]
        module.register_buffer("image_mean", mean)
        module.register_buffer("image_std", std)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> NormalizationStats:
        return cls(
            FeatureStats(**data["state"]),
            FeatureStats(**data["action"]),
            data["image_mean"],
            data["image_std"],
        )
