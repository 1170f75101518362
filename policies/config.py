"""The part of every policy config that the trainer, the policy wrapper and the executor
read; each policy's dataclass (``ACTConfig``, ``DiffusionConfig``) extends it.

Durations are in seconds and turned into steps at the store's rate, so a chunk means the
same stretch of motion whether the store was recorded at 10 Hz (sim) or 50 Hz (ALOHA-like).
Dimensions never live here: they come from the store schema (``policies.features``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

ActionMode = Literal["absolute", "relative"]
NormMode = Literal["mean_std", "min_max"]


@dataclass(frozen=True)
class PolicyConfig:
    name: ClassVar[str] = ""
    # Fields that change only how a trained network is queried, never its training: a resume
    # may differ in them, and a checkpoint written before one existed still resumes.
    inference_fields: ClassVar[frozenset[str]] = frozenset()

    obs_horizon: int = 1  # To: observation steps the model sees (current last)
    horizon_s: float = 1.6  # chunk length in seconds -> H = round(horizon_s * rate)
    execute_s: float = 0.8  # played before re-planning (ignored with temporal ensembling)
    temporal_ensemble_k: float | None = None  # ACT's exp(-k i) weights; None: no ensembling
    image_size: tuple[int, int] = (96, 128)  # (h, w) every camera is resized to
    crop_size: tuple[int, int] | None = (88, 118)  # random crop (training), center (inference)
    action_mode: ActionMode = "absolute"  # targets absolute, or relative to the current pose
    normalization: NormMode = "mean_std"  # of state and action features
    encoder_width: int = 64  # ResNet-18 channels of the first stage (64 = published)
    encoder_output_stride: int = 32  # 32 = published; 16/8 keep finer feature maps
    encoder_stages: int = 4  # ResNet-18 stages kept: 4 = published; 2 = stride 8, cheaper
    lr: float = 1e-4
    lr_backbone: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float | None = 10.0
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    ema_decay: float | None = None  # EMA of the weights, used for evaluation when set
    batch_size: int = 64  # training defaults of this preset (rl train flags override)
    train_steps: int = 100_000
    cameras: tuple[str, ...] | None = None  # store camera keys used; None: all of them
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept in checkpoints

    def __post_init__(self) -> None:
        problems = []
        if self.obs_horizon < 1:
            problems.append(f"obs_horizon={self.obs_horizon} must be >= 1")
        if self.horizon_s <= 0 or self.execute_s <= 0:
            problems.append(f"horizon_s={self.horizon_s}, execute_s={self.execute_s} must be > 0")
        if self.execute_s > self.horizon_s + 1e-9:
            problems.append(f"execute_s={self.execute_s} exceeds horizon_s={self.horizon_s}")
        if self.crop_size is not None and (
            self.crop_size[0] > self.image_size[0] or self.crop_size[1] > self.image_size[1]
        ):
            problems.append(f"crop_size={self.crop_size} exceeds image_size={self.image_size}")
        if self.action_mode not in ("absolute", "relative"):
            problems.append(f"action_mode={self.action_mode!r} (absolute or relative)")
        if self.normalization not in ("mean_std", "min_max"):
            problems.append(f"normalization={self.normalization!r} (mean_std or min_max)")
        if self.encoder_output_stride not in (8, 16, 32):
            problems.append(f"encoder_output_stride={self.encoder_output_stride} (8, 16 or 32)")
        if self.encoder_stages not in (1, 2, 3, 4):
            problems.append(f"encoder_stages={self.encoder_stages} (1, 2, 3 or 4)")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            problems.append(f"ema_decay={self.ema_decay} must be in (0, 1)")
        if problems:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(problems))

    def horizon_steps(self, rate_hz: float) -> int:
        return max(1, round(self.horizon_s * rate_hz))

    def execute_steps(self, rate_hz: float) -> int:
        return max(1, min(self.horizon_steps(rate_hz), round(self.execute_s * rate_hz)))

    @property
    def model_image_size(self) -> tuple[int, int]:
        return self.crop_size or self.image_size

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.name, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicyConfig:
        data = {k: v for k, v in data.items() if k != "policy"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown config fields {unknown}")
        for f in dataclasses.fields(cls):  # JSON has lists where the dataclass has tuples
            if f.name in data and isinstance(data[f.name], list):
                data[f.name] = tuple(data[f.name])
        return cls(**data)

    def replace(self, **changes: Any) -> PolicyConfig:
        return dataclasses.replace(self, **changes)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)
