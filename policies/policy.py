"""The policy contract, and its implementation for every chunk-predicting network.

  policy.reset()
  chunk = policy.act(observation)

``observation`` (robot_learning.runtime.Observation): the latest frame of each camera
(uint8 HxWx3, as stored) and the robot state, under the store's keys, each with its capture
time. ``chunk`` (ActionChunk): H Cartesian targets + gripper in the base frame, each with an
absolute time, the first at the observation time. A policy that looks at several past
observations (Diffusion: To = 2) keeps them itself: the runtime also hands it the
observations between queries through ``observe`` (every ``observation_period_s``), and it
picks the ones nearest to t, t - 1/rate, ... by timestamp, as the store's rows were spaced.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from policies import checkpoint as ckpt
from policies.config import PolicyConfig
from policies.features import PolicyFeatures
from policies.model import ModelShapes
from policies.network import PolicyNetwork
from policies.normalization import NormalizationStats
from policies.registry import get_policy
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH
from robot_learning.runtime import ActionChunk, ExecutionConfig, Observation


class Policy(ABC):
    """What deployment, evaluation and MT-pi rely on."""

    # A trained network behind the contract, run as its checkpoint's config says.
    config: PolicyConfig
    network: torch.nn.Module
    checkpoint: Path | None

    @abstractmethod
    def reset(self) -> None:
        """Forget the episode so far."""

    @abstractmethod
    def act(self, observation: Observation) -> ActionChunk:
        """A chunk of targets anchored at ``observation.time_s``."""

    def observe(self, observation: Observation) -> None:  # noqa: B027 (optional hook)
        """An observation between queries (history for policies with To > 1)."""

    @property
    def observation_period_s(self) -> float | None:
        """How often ``observe`` wants to be called; None: never."""
        return None

    def use_cameras(self, source: Any) -> None:  # noqa: B027 (optional hook)
        """Where the station's calibrated cameras are (name -> track_geometry.CameraView, or
        a callable giving them now); policies that act in 3D from images (MT-pi) need it."""

    def change_inference(self, **changes: Any) -> None:
        """Query the trained network differently (rl eval/deploy --samples): only
        ``config.inference_fields`` may change (Diffusion, MT-pi: ``num_samples``,
        ``num_inference_steps``); the weights and what training saw stay."""
        if not changes:  # rl eval/deploy without --samples: the checkpoint's own settings
            return
        allowed = self.config.inference_fields
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(
                f"{self.config.name} policy ({self.checkpoint}): {unknown} cannot change at "
                f"inference; what can: {sorted(allowed) or 'nothing'}"
            )
        self.config = self.config.replace(**changes)  # validated like a trained config
        for module in self.network.modules():  # the network and its model read it
            if isinstance(getattr(module, "config", None), PolicyConfig):
                module.config = self.config

    def inference_settings(self) -> dict[str, Any]:
        """What ``change_inference`` may change, as now set (for reports and status)."""
        return {name: getattr(self.config, name) for name in sorted(self.config.inference_fields)}


def load_policy(path: str | Path, *, device: str | torch.device = "cpu") -> Policy:
    """Any checkpoint, by the policy its config.json names."""
    path = ckpt.resolve(path)
    name = ckpt.read_json(path, "config.json").get("policy")
    try:
        spec = get_policy(name)
    except ValueError as exc:
        raise ckpt.CheckpointError(f"{path / 'config.json'}: {exc}") from None
    return (spec.load or ChunkPolicy.load)(path, device=device)


def model_shapes(config: PolicyConfig, features: PolicyFeatures) -> ModelShapes:
    from policies.action_space import ACTION_DIM, STATE_DIM

    return ModelShapes(
        num_cameras=len(features.cameras),
        image_size=config.model_image_size,
        state_dim=STATE_DIM,
        action_dim=ACTION_DIM,
        obs_horizon=config.obs_horizon,
        horizon=config.horizon_steps(features.rate_hz),
    )


def build_network(
    config: PolicyConfig, features: PolicyFeatures, stats: NormalizationStats
) -> PolicyNetwork:
    spec = get_policy(config.name)
    if spec.build_network is not None:  # a policy with its own network (MT-pi)
        return spec.build_network(config, features, stats)
    model = spec.build_model(config, model_shapes(config, features))
    return PolicyNetwork(config, features, model, stats)


class ChunkPolicy(Policy):
    """A trained PolicyNetwork behind the policy contract."""

    def __init__(
        self,
        network: PolicyNetwork,
        *,
        device: str | torch.device = "cpu",
        checkpoint: Path | None = None,
    ) -> None:
        self.network = network.to(device).eval()
        self.device = torch.device(device)
        self.config: PolicyConfig = network.config
        self.features: PolicyFeatures = network.features
        self.checkpoint = checkpoint
        self._history: deque[tuple[float, Observation]] = deque()

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device = "cpu") -> ChunkPolicy:
        """Load a checkpoint directory (verified file by file; nothing is unpickled)."""
        path = ckpt.resolve(path)
        ckpt.verify(path)
        raw = ckpt.read_json(path, "config.json")
        name = raw.get("policy")
        try:
            spec = get_policy(name)
            config = spec.config_class.from_json(raw)
        except (ValueError, TypeError) as exc:
            raise ckpt.CheckpointError(f"{path / 'config.json'}: {exc}") from None
        features = PolicyFeatures.from_json(ckpt.read_json(path, "features.json"))
        stats = NormalizationStats.from_json(ckpt.read_json(path, "normalization.json"))
        network = build_network(config, features, stats)
        weights = ckpt.read_tensors(path, ckpt.WEIGHTS)
        missing, unexpected = network.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ckpt.CheckpointError(
                f"{path / ckpt.WEIGHTS}: weights do not fit the {name} network of config.json "
                f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        return cls(network, device=device, checkpoint=path)

    # -- the contract ------------------------------------------------------------------------
    @property
    def observation_period_s(self) -> float | None:
        return self.features.period_s if self.config.obs_horizon > 1 else None

    def execution(self) -> ExecutionConfig:
        """How this policy's chunks are meant to be played (its config's defaults)."""
        return ExecutionConfig(
            execute_steps=self.config.execute_steps(self.features.rate_hz),
            temporal_ensemble_k=self.config.temporal_ensemble_k,
        )

    def reset(self) -> None:
        self._history.clear()

    def observe(self, observation: Observation) -> None:
        self._check(observation)
        self._history.append((observation.time_s, observation))
        keep_s = (self.config.obs_horizon + 1) * self.features.period_s
        while len(self._history) > 1 and self._history[0][0] < observation.time_s - keep_s:
            self._history.popleft()

    def act(self, observation: Observation) -> ActionChunk:
        self.observe(observation)
        window = self._window(observation.time_s)
        frames = {
            cam: torch.from_numpy(np.stack([o[cam] for o in window])).permute(0, 3, 1, 2)[None]
            for cam in self.features.cameras
        }
        ee = torch.from_numpy(np.stack([np.asarray(o[EE_POSE], np.float64) for o in window]))
        grip = torch.tensor([float(o[GRIPPER_WIDTH]) for o in window], dtype=torch.float64)
        actions = self.network.predict_actions(frames, ee[None], grip[None])[0].cpu().numpy()
        times = observation.time_s + np.arange(len(actions)) * self.features.period_s
        return ActionChunk.from_vectors(times, actions)

    # -- helpers -----------------------------------------------------------------------------
    def _window(self, now_s: float) -> list[Observation]:
        """The To observations nearest to now - k / rate (oldest first), as in training."""
        out = []
        for k in range(self.config.obs_horizon - 1, -1, -1):
            wanted = now_s - k * self.features.period_s
            eligible = [o for t, o in self._history if t <= wanted + 1e-6]
            out.append(eligible[-1] if eligible else self._history[0][1])
        return out

    def _check(self, observation: Observation) -> None:
        for cam, shape in zip(self.features.cameras, self.features.image_shapes, strict=True):
            image = observation[cam]
            if tuple(image.shape) != tuple(shape) or image.dtype != np.uint8:
                raise ValueError(
                    f"observation {cam!r} is {image.dtype} {tuple(image.shape)}; "
                    f"the policy was trained on uint8 {tuple(shape)}"
                )
        pose = np.asarray(observation[EE_POSE])
        if pose.shape != (7,) or not np.all(np.isfinite(pose)):
            raise ValueError(f"observation {EE_POSE!r} must be 7 finite values, got {pose}")
