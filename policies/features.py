"""What a policy observes and outputs, read from the store schema (never from constants).

A checkpoint records its features; loading it against a store or a robot station whose
cameras, image sizes or action layout differ is refused with the mismatch named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from robot_learning.errors import InputError
from robot_learning.keys import ACTION, CAMERA_PREFIX, EE_POSE, GRIPPER_WIDTH
from robot_learning.store import MAIN_STREAM, StoreSchema

STATE_KEYS = (EE_POSE, GRIPPER_WIDTH)
_EXPECTED = {ACTION: (8,), EE_POSE: (7,), GRIPPER_WIDTH: ()}


class FeatureMismatchError(InputError):
    """A checkpoint and a store/station disagree on cameras, image sizes or action space."""


@dataclass(frozen=True)
class PolicyFeatures:
    cameras: tuple[str, ...]  # store keys, e.g. ("camera_front", "camera_wrist")
    image_shapes: tuple[tuple[int, int, int], ...]  # (H, W, 3) per camera, as stored
    rate_hz: float  # the store's step rate: chunk steps are 1 / rate_hz apart
    action_key: str = ACTION
    state_keys: tuple[str, ...] = STATE_KEYS

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz

    @classmethod
    def from_schema(
        cls, schema: StoreSchema, *, where: str, cameras: Sequence[str] | None = None
    ) -> PolicyFeatures:
        """Features of a store; ``where`` names the store in errors."""
        for key, shape in _EXPECTED.items():
            spec = schema.keys.get(key)
            if spec is None:
                what = "action" if key == ACTION else "robot state"
                raise ValueError(
                    f"{where}: no {what} key {key!r}; a policy needs {', '.join(_EXPECTED)} "
                    "(human-video-only stores have no robot actions)"
                )
            if tuple(spec.shape) != shape or spec.stream != MAIN_STREAM:
                raise ValueError(
                    f"{where}: key {key!r} is {tuple(spec.shape)} in stream "
                    f"{spec.stream!r}; expected {shape} in {MAIN_STREAM!r}"
                )
        if "quaternion xyzw" not in (schema.keys[ACTION].units or ""):
            raise ValueError(
                f"{where}: action units {schema.keys[ACTION].units!r} are not "
                "position + quaternion xyzw + gripper"
            )
        available = [
            k
            for k, s in schema.keys.items()
            if k.startswith(CAMERA_PREFIX)
            and s.is_image
            and s.stream == MAIN_STREAM
            and len(s.shape) == 3
            and s.shape[2] == 3
        ]
        chosen = list(cameras) if cameras else available
        unknown = [c for c in chosen if c not in available]
        if unknown:
            raise ValueError(f"{where}: no color camera {unknown}; it has {available}")
        if not chosen:
            raise ValueError(f"{where}: no color camera keys; image policies need one")
        rate = schema.stream_rates_hz.get(MAIN_STREAM)
        if not rate:
            raise ValueError(f"{where}: the schema declares no rate for stream {MAIN_STREAM!r}")
        return cls(
            cameras=tuple(chosen),
            image_shapes=tuple(tuple(schema.keys[c].shape) for c in chosen),
            rate_hz=float(rate),
        )

    def mismatches(self, other: PolicyFeatures) -> list[str]:
        """Human-readable differences that make a checkpoint unusable on ``other``."""
        out = []
        theirs = dict(zip(other.cameras, other.image_shapes, strict=True))
        for cam, shape in zip(self.cameras, self.image_shapes, strict=True):
            if cam not in theirs:
                out.append(f"camera {cam!r} missing (has {list(other.cameras)})")
            elif tuple(theirs[cam]) != tuple(shape):
                out.append(f"camera {cam!r} is {tuple(theirs[cam])}, trained on {tuple(shape)}")
        if abs(self.rate_hz - other.rate_hz) > 1e-6:
            out.append(f"step rate {other.rate_hz} Hz, trained at {self.rate_hz} Hz")
        if self.action_key != other.action_key or self.state_keys != other.state_keys:
            out.append(
                f"action/state keys {other.action_key}/{other.state_keys}, trained on "
                f"{self.action_key}/{self.state_keys}"
            )
        return out

    def check(self, other: PolicyFeatures, *, where: str) -> None:
        problems = self.mismatches(other)
        if problems:
            raise FeatureMismatchError(f"checkpoint does not match {where}: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        return {
            "cameras": list(self.cameras),
            "image_shapes": [list(s) for s in self.image_shapes],
            "rate_hz": self.rate_hz,
            "action_key": self.action_key,
            "state_keys": list(self.state_keys),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PolicyFeatures:
        return cls(
            cameras=tuple(data["cameras"]),
            image_shapes=tuple(tuple(s) for s in data["image_shapes"]),
            rate_hz=float(data["rate_hz"]),
            action_key=data["action_key"],
            state_keys=tuple(data["state_keys"]),
        )
