"""A small real store (scripted lift demos at 48x64, rendered by the simulator) and tiny
policy configs, shared by the policy tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from policies.config import PolicyConfig
from policies.registry import preset

TINY = {
    "act": dict(
        image_size=(48, 64),
        crop_size=(44, 58),
        encoder_width=8,
        dim_model=32,
        n_heads=4,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_decoder_layers=2,
        n_vae_encoder_layers=1,
        horizon_s=1.0,
        lr=1e-3,
        lr_backbone=1e-3,
        warmup_steps=2,
        ema_decay=0.9,
        temporal_ensemble_k=None,  # re-plan every second: a tenth of the policy calls
    ),
    "diffusion": dict(
        image_size=(48, 64),
        crop_size=(44, 58),
        encoder_width=8,
        down_dims=(16, 32),
        diffusion_step_embed_dim=16,
        num_keypoints=8,
        horizon_s=0.8,
        execute_s=0.4,
        num_inference_steps=4,
        warmup_steps=2,
        lr=1e-3,
        lr_backbone=1e-3,
        ema_decay=0.9,
    ),
    "mtpi": dict(
        image_size=(48, 64),
        crop_size=(44, 58),
        encoder_width=8,
        num_keypoints=8,
        embed_dim=16,
        down_dims=(16, 32),
        diffusion_step_embed_dim=16,
        num_inference_steps=4,
        warmup_steps=2,
        lr=1e-3,
        lr_backbone=1e-3,
        ema_decay=0.9,
    ),
}


def tiny_config(name: str, **changes) -> PolicyConfig:
    return dataclasses.replace(preset(name, "sim"), **{**TINY[name], **changes})


def train_tiny(store: Path, out: Path, name: str, steps: int, **kw) -> object:
    """``name`` with its tiny config trained ``steps`` steps on ``store`` (batch 8, a quarter
    of the episodes for validation); ``kw``: val_every, every (checkpoints), changes (to the
    config), anything else for TrainConfig."""
    from policies.data import DataSelection
    from policies.train import TrainConfig, train

    changes = kw.pop("changes", {})
    cfg = TrainConfig(
        store=str(store),
        out=out,
        steps=steps,
        batch_size=8,
        num_workers=0,
        val_every=kw.pop("val_every", 2),
        checkpoint_every=kw.pop("every", 2),
        selection=DataSelection(val_fraction=0.25),
        **kw,
    )
    return train(cfg, tiny_config(name, **changes), progress=False)


def tiny_overrides(name: str) -> list[str]:
    """The tiny config as ``rl train --set`` arguments."""
    import json

    out = []
    for key, value in TINY[name].items():
        out += ["--set", f"{key}={json.dumps(list(value) if isinstance(value, tuple) else value)}"]
    return out


@pytest.fixture(scope="session")
def lift_store(tmp_path_factory) -> Path:
    """4 scripted lift episodes (seeds 0-3), 2 cameras at 48x64, 10 Hz."""
    from data_collection.sim_collect import CollectConfig, collect

    store = tmp_path_factory.mktemp("stores") / "lift.zarr"
    collect(
        CollectConfig(task="lift", episodes=4, store=store, image_size=(48, 64), seed=0),
        progress=False,
    )
    return store
