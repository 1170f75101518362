"""Checkpoints: a directory of safetensors weights and JSON, never pickle.

  checkpoint/
    config.json          the policy config ("policy": name, and every field)
    features.json        cameras, image shapes, step rate, action/state keys (from the store)
    normalization.json   the statistics (also inside the weights, as buffers)
    data.json            store path, fingerprint, train/validation episodes, selection
    model.safetensors    the network's weights for inference (EMA weights when trained with EMA)
    training/            what --resume needs: raw weights, optimizer, step, loss history
    manifest.json        sha256 and size of every file above: a missing or altered file is
                         named at load time instead of failing somewhere inside torch

Saving writes a sibling temporary directory and renames it into place, so a crash while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from robot_learning.errors import InputError

MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
CHECKPOINT_DIR = "checkpoint"


class CheckpointError(InputError):
    """A checkpoint directory that cannot be used, with the file and the reason."""


def resolve(path: str | os.PathLike[str]) -> Path:
    """Accept a checkpoint directory or a training output directory holding one."""
    path = Path(path)
    if (path / MANIFEST).exists():
        return path
    if (path / CHECKPOINT_DIR / MANIFEST).exists():
        return path / CHECKPOINT_DIR
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint directory")
    raise CheckpointError(
        f"{path}: not a checkpoint (no {MANIFEST}); expected the output of "
        "`rl train` or its checkpoint/ directory"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write(
    path: Path, *, json_files: dict[str, Any], tensors: dict[str, dict[str, torch.Tensor]]
) -> None:
    """Write a checkpoint atomically. ``tensors``: relative file name -> flat tensor dict."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in json_files.items():
        target = tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=2, sort_keys=True))
    for name, flat in tensors.items():
        target = tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in flat.items()}, str(target))
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest = {
        str(p.relative_to(tmp)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def fingerprint(path: Path) -> str:
    """sha256 of the manifest: names every file's checksum, so it identifies the checkpoint."""
    return _sha256(Path(path) / MANIFEST)


def verify(path: Path, *, with_training: bool = False) -> dict[str, Any]:
    """Check every file against the manifest; returns the manifest."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path / MANIFEST}: unreadable ({exc})") from None
    for name, entry in manifest.items():
        if name.startswith("training/") and not with_training:
            continue
        file = path / name
        if not file.exists():
            raise CheckpointError(f"{path}: file {name} is missing")
        if file.stat().st_size != entry["bytes"] or _sha256(file) != entry["sha256"]:
            raise CheckpointError(
                f"{path}: file {name} was altered (its checksum differs from {MANIFEST})"
            )
    return manifest


def read_json(path: Path, name: str) -> Any:
    try:
        return json.loads((path / name).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path / name}: unreadable ({exc})") from None


def read_tensors(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path / name))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{path / name}: unreadable weights ({exc})") from None
