"""One registration mechanism for policies: name -> config class, model class, presets.

``rl train --policy NAME --preset PRESET`` and checkpoint loading both go through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from policies.config import PolicyConfig

if TYPE_CHECKING:  # torch: loaded when a policy is, not when `rl` starts
    from policies.model import ChunkModel, ModelShapes

# name -> module that registers it on import (kept lazy: torch models load only when used)
_MODULES = {
    "act": "policies.act",
    "diffusion": "policies.diffusion",
    "mtpi": "policies.motion_tracks",
}


@dataclass(frozen=True)
class PolicySpec:
    name: str
    config_class: type[PolicyConfig]
    build_model: Callable[[PolicyConfig, ModelShapes], ChunkModel]
    presets: dict[str, PolicyConfig]  # "default" = published sizes; "sim" etc. = CPU-sized
    # A policy that does not predict store actions from (images, robot state) (MT-pi: tracks)
    # brings its own training data, network and loader; None: the chunk-policy ones
    # (policies.data.TrainingData.from_store, PolicyNetwork, ChunkPolicy.load).
    training_data: Callable[..., Any] | None = None
    build_network: Callable[..., Any] | None = None
    load: Callable[..., Any] | None = None


_REGISTRY: dict[str, PolicySpec] = {}


def register_policy(spec: PolicySpec) -> PolicySpec:
    if "default" not in spec.presets:
        raise ValueError(f"policy {spec.name!r} registers no 'default' preset")
    _REGISTRY[spec.name] = spec
    return spec


def policy_names() -> list[str]:
    return sorted(_MODULES)


def get_policy(name: str) -> PolicySpec:
    if name not in _REGISTRY:
        if name not in _MODULES:
            raise ValueError(f"unknown policy {name!r}; known: {', '.join(policy_names())}")
        import_module(_MODULES[name])
    return _REGISTRY[name]


def preset(name: str, preset_name: str) -> PolicyConfig:
    spec = get_policy(name)
    if preset_name not in spec.presets:
        raise ValueError(
            f"policy {name!r} has no preset {preset_name!r}; presets: {', '.join(spec.presets)}"
        )
    return spec.presets[preset_name]
