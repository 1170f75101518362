"""``rl train``: a store in, a policy checkpoint out; CPU, one GPU, or torchrun (DDP).

Reproducible to the bit on one machine: the batches of step s are drawn from (seed, s)
(``data.StepBatches``), and the torch RNG (dropout, diffusion noise, crops) is reseeded from
(seed, s) at every step, so ``--resume`` continues with exactly the loss sequence of an
uninterrupted run. Under torchrun every rank trains on its own shard; rank 0 logs, validates
and writes checkpoints, and the run ends by checking that all ranks hold identical weights.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from policies import checkpoint as ckpt
from policies.config import PolicyConfig
from policies.data import DataSelection, StepBatches, TrainingData
from policies.features import FeatureMismatchError, PolicyFeatures
from policies.model import ChunkModel
from policies.network import PolicyNetwork
from policies.normalization import NormalizationStats
from policies.policy import build_network
from policies.registry import get_policy
from robot_learning.errors import RobotLearningError
from robot_learning.store.sampler import BatchedView

log = logging.getLogger(__name__)


class TrainingError(RobotLearningError, RuntimeError):
    """Training cannot go on (non-finite loss, a resume that does not match)."""


@dataclass(frozen=True)
class TrainConfig:
    store: str
    out: Path
    steps: int
    batch_size: int
    seed: int = 0
    num_workers: int = 2
    cache_images: bool = False  # decode + resize every frame once, keep them in memory
    val_every: int = 500
    val_batches: int = 4
    checkpoint_every: int = 1000
    log_every: int = 20
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    resume: bool = False
    stop_after: int | None = None  # end this run at that step, as if interrupted (--resume)
    init_from: Path | None = None  # fine-tune: start from this checkpoint's network weights
    selection: DataSelection = field(default_factory=DataSelection)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["out"], out["selection"] = str(self.out), self.selection.to_json()
        out["init_from"] = None if self.init_from is None else str(self.init_from)
        return out


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    losses: list[float]
    val_losses: dict[int, float]
    seconds: float


# ---------------------------------------------------------------------------------------------
class EMA:
    """Exponential moving average of the weights, with diffusion_policy's warm-up
    (decay = 1 - (1 + step) ** -0.75, capped at ``max_decay``)."""

    def __init__(self, network: PolicyNetwork, max_decay: float) -> None:
        self.network = copy.deepcopy(network).eval().requires_grad_(False)
        self.max_decay = max_decay

    @torch.no_grad()
    def update(self, network: PolicyNetwork, step: int) -> None:
        decay = min(self.max_decay, max(0.0, 1.0 - (1.0 + step) ** -0.75))
        for ema_p, p in zip(self.network.parameters(), network.parameters(), strict=True):
            ema_p.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        for ema_b, b in zip(self.network.buffers(), network.buffers(), strict=True):
            ema_b.copy_(b)


def make_optimizer(model: ChunkModel, config: PolicyConfig) -> torch.optim.AdamW:
    """AdamW over the model's parameter groups, fused: one pass over each parameter, its
    gradient and moments per step where the reference loop makes about ten (on CPU the
    step of the 267 M-parameter Diffusion U-Net is memory-bound: seconds, not FLOPs)."""
    return torch.optim.AdamW(
        model.parameter_groups(config.lr, config.lr_backbone, config.weight_decay),
        betas=config.betas,
        fused=True,
    )


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> None:
    """``clip_grad_norm_`` that skips the multiply by exactly 1 when the norm is under
    ``max_norm`` (torch always multiplies, to avoid a device sync; on CPU that is a full pass
    over every gradient for nothing). Identical gradients either way."""
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return
    total = torch.nn.utils.get_total_norm([p.grad for p in params])
    if bool(max_norm / (total + 1e-6) < 1.0):  # torch's clip coefficient, before clamping
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)


def lr_lambda(config: PolicyConfig, total_steps: int):
    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "cosine":
            progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return factor


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors = {
        f"{pid}.{name}": value if torch.is_tensor(value) else torch.tensor(value)
        for pid, entry in state["state"].items()
        for name, value in entry.items()
    }
    return tensors, {"param_groups": state["param_groups"]}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: dict) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": groups["param_groups"]}


def _digest(network: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, p in sorted(network.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def _resolve_device(name: str, local_rank: int) -> str:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        name = f"cuda:{local_rank}"
    return name


# ---------------------------------------------------------------------------------------------
def train(cfg: TrainConfig, policy_config: PolicyConfig, *, progress: bool = True) -> TrainResult:
    """Train ``policy_config`` on ``cfg.store``; the checkpoint lands in ``cfg.out/checkpoint``."""
    spec = get_policy(policy_config.name)  # unknown names fail before any data is read
    # The checkpoint's config.json records the run as trained, not the preset's defaults
    # that --steps and --batch-size overrode.
    policy_config = dataclasses.replace(
        policy_config, train_steps=cfg.steps, batch_size=cfg.batch_size
    )
    device = _resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    ddp = _setup_distributed(device)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device).index or 0)
    started = time.perf_counter()
    out = Path(cfg.out)
    data = (spec.training_data or TrainingData.from_store)(
        cfg.store,
        policy_config,
        cfg.selection,
        cache_images=cfg.cache_images,
        progress=progress and ddp.main,
    )
    start_step, losses, val_losses = 0, [], {}
    resume_state: dict[str, Any] | None = None
    if cfg.resume:
        resume_state = _load_resume(out / ckpt.CHECKPOINT_DIR, policy_config, data)
        stats = NormalizationStats.from_json(resume_state["normalization"])
        start_step, losses = resume_state["step"], resume_state["losses"]
        val_losses = {int(k): v for k, v in resume_state["val_losses"].items()}
    else:
        if (out / ckpt.CHECKPOINT_DIR / ckpt.MANIFEST).exists():
            raise TrainingError(
                f"{out / ckpt.CHECKPOINT_DIR} already holds a checkpoint; "
                "continue it with --resume or choose another --out"
            )
        stats = data.statistics(policy_config)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    network = build_network(policy_config, data.features, stats).to(device)
    if cfg.init_from is not None and resume_state is None:
        _init_weights(network, Path(cfg.init_from), policy_config, data.features, cfg.store)
    ema = EMA(network, policy_config.ema_decay) if policy_config.ema_decay else None
    optimizer = make_optimizer(network.model, policy_config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(policy_config, cfg.steps))
    if resume_state is not None:
        _restore(out / ckpt.CHECKPOINT_DIR, network, ema, optimizer, scheduler, start_step)
    model: torch.nn.Module = network
    if ddp.world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[torch.device(device).index] if device.startswith("cuda") else None
        )
    sampler = StepBatches(
        len(data.train),
        cfg.batch_size,
        seed=cfg.seed,
        steps=cfg.steps,
        start_step=start_step,
        rank=ddp.rank,
        world_size=ddp.world,
        weights=data.weights,
    )
    workers = 0 if cfg.cache_images else cfg.num_workers
    loader = DataLoader(
        BatchedView(data.train),
        batch_size=None,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=False,
        pin_memory=device.startswith("cuda"),
    )
    writer = None
    if ddp.main:
        out.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"))
        log.info(
            "training %s on %d episodes (%d windows), validating on %d episodes; "
            "%s, %.2f M parameters",
            policy_config.name,
            len(data.train_episodes),
            len(data.train),
            len(data.val_episodes),
            device,
            sum(p.numel() for p in network.parameters()) / 1e6,
        )
    amp = cfg.amp and device.startswith("cuda")
    bar = tqdm(
        total=cfg.steps,
        initial=start_step,
        desc=f"train {policy_config.name}",
        unit="step",
        disable=not (progress and ddp.main),
        dynamic_ncols=True,
    )
    done = start_step
    save = _saver(cfg, policy_config, data, stats, network, ema, optimizer, ddp)
    for step, batch in enumerate(loader, start=start_step):
        network.train()
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        crops = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss, parts = model(batch, generator=crops)
        if not torch.isfinite(loss):
            saved = saved_progress(out)
            raise TrainingError(
                f"non-finite training loss ({loss.item()}) at step {step}; nothing was saved "
                f"for this run beyond the last checkpoint (step {saved[0] if saved else None})"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if policy_config.grad_clip:
            clip_gradients(network.parameters(), policy_config.grad_clip)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(network, step)
        losses.append(float(loss.item()))
        done = step + 1
        if writer is not None and (done % cfg.log_every == 0 or done == cfg.steps):
            writer.add_scalar("train/loss", losses[-1], done)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], done)
            for name, value in parts.items():
                writer.add_scalar(f"train/{name}", float(value), done)
            bar.set_postfix(loss=f"{np.mean(losses[-cfg.log_every :]):.4f}")
        if (
            ddp.main
            and data.val is not None
            and cfg.val_every
            and (done % cfg.val_every == 0 or done == cfg.steps)
        ):
            val_losses[done] = validate(ema.network if ema else network, data, cfg)
            if writer is not None:
                writer.add_scalar("val/loss", val_losses[done], done)
            bar.set_postfix(
                loss=f"{np.mean(losses[-cfg.log_every :]):.4f}", val=f"{val_losses[done]:.4f}"
            )
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save(done, losses, val_losses)
        bar.update(1)
        if cfg.stop_after is not None and done >= cfg.stop_after:
            if done % cfg.checkpoint_every:
                save(done, losses, val_losses)
            break
    bar.close()
    digests = [_digest(network)]
    if ddp.world > 1:
        gathered: list[Any] = [None] * ddp.world
        dist.all_gather_object(gathered, digests[0])
        digests = gathered
        if len(set(digests)) != 1:
            raise TrainingError(f"ranks ended with different weights: {digests}")
    if ddp.main:
        _record_digests(out / ckpt.CHECKPOINT_DIR, digests)
        if writer is not None:
            writer.close()
    if ddp.world > 1:
        dist.barrier()
    return TrainResult(
        out / ckpt.CHECKPOINT_DIR, done, losses, val_losses, time.perf_counter() - started
    )


@torch.no_grad()
def validate(network: PolicyNetwork, data: TrainingData, cfg: TrainConfig) -> float:
    """Mean loss over fixed batches of the held-out episodes (same noise every time)."""
    assert data.val is not None
    network.eval()
    rng_state = torch.get_rng_state()
    torch.manual_seed(cfg.seed + 7)
    order = np.random.default_rng(cfg.seed).permutation(len(data.val))
    values = []
    for i in range(cfg.val_batches):
        indices = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        if len(indices) == 0:
            break
        loss, _ = network(data.val.get_batch(indices.tolist()))
        values.append(float(loss))
    torch.set_rng_state(rng_state)
    return float(np.mean(values))


# ---------------------------------------------------------------------------------------------
def _saver(cfg, policy_config, data, stats, network, ema, optimizer, ddp):
    def save(step: int, losses: list[float], val_losses: dict[int, float]) -> None:
        if not ddp.main:
            return
        opt_tensors, opt_groups = _flatten_optimizer(optimizer)
        inference = (ema.network if ema else network).state_dict()
        tensors = {ckpt.WEIGHTS: inference, "training/optimizer.safetensors": opt_tensors}
        if ema is not None:
            tensors["training/raw_model.safetensors"] = network.state_dict()
        state = {
            "step": step,
            "losses": losses,
            "val_losses": val_losses,
            "train_config": cfg.to_json(),
            "optimizer": opt_groups,
            "normalization": stats.to_json(),
            "world_size": ddp.world,
        }
        ckpt.write(
            Path(cfg.out) / ckpt.CHECKPOINT_DIR,
            json_files={
                "config.json": policy_config.to_json(),
                "features.json": data.features.to_json(),
                "normalization.json": stats.to_json(),
                "data.json": {
                    "store": str(cfg.store),
                    "fingerprint": data.fingerprint,
                    "train_episodes": data.train_episodes,
                    "val_episodes": data.val_episodes,
                    "seeds": data.seeds,
                    "selection": cfg.selection.to_json(),
                },
                "training/state.json": state,
            },
            tensors=tensors,
        )

    return save


def _saved_state(out: Path) -> dict[str, Any] | None:
    """``training/state.json`` of the run saved in ``out``; None when it saved nothing."""
    try:
        state = json.loads((out / ckpt.CHECKPOINT_DIR / "training" / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def saved_train_config(out: Path) -> dict[str, Any] | None:
    """The TrainConfig (as JSON) of the run saved in ``out``; None when it saved nothing."""
    config = (_saved_state(out) or {}).get("train_config")
    return dict(config) if isinstance(config, dict) else None


def saved_progress(out: Path) -> tuple[int, int] | None:
    """(step saved, steps the run was asked for) of the run in ``out``; None when it saved
    nothing. A periodic checkpoint alone makes a half-done run look complete."""
    state = _saved_state(out)
    try:
        total = (
            state["train_config"]["steps"]
            or json.loads((out / ckpt.CHECKPOINT_DIR / "config.json").read_text())["train_steps"]
        )
        return int(state["step"]), int(total)
    except (OSError, ValueError, KeyError, TypeError):
        return None


# Fields that say what the network's inputs and outputs mean: weights trained under other
# values have the same shapes but answer another question (a relative target read as an
# absolute one). The rest (learning rate, schedule, steps, EMA, ...) may change to fine-tune.
FINE_TUNING_FIXED = (
    "policy",
    "obs_horizon",
    "horizon_s",
    "image_size",
    "crop_size",
    "action_mode",
    "normalization",
    "cameras",
)


def _check_fine_tuning(
    path: Path, policy_config: PolicyConfig, features: PolicyFeatures, store: str | Path
) -> None:
    """``--init-from``: refuse a checkpoint (resolved, verified) trained on other cameras,
    image sizes, rate or action space than this run's store, or whose inputs and outputs
    meant something else."""
    trained = type(features).from_json(ckpt.read_json(path, "features.json"))
    problems = trained.mismatches(features)
    saved = ckpt.read_json(path, "config.json")
    ours = json.loads(json.dumps(policy_config.to_json()))
    problems += [
        f"{name}={ours.get(name)!r}, trained with {saved.get(name)!r}"
        for name in FINE_TUNING_FIXED
        if saved.get(name) != ours.get(name)
    ]
    if problems:
        raise FeatureMismatchError(
            f"--init-from {path} does not match this run (store {store}): " + "; ".join(problems)
        )


def _init_weights(
    network: PolicyNetwork,
    path: Path,
    policy_config: PolicyConfig,
    features: PolicyFeatures,
    store: str | Path,
) -> None:
    """Fine-tuning: the model's weights from checkpoint ``path``, once it matches this run;
    the normalization stays this run's (its data may have grown), and the optimizer starts
    afresh."""
    path = ckpt.resolve(path)
    ckpt.verify(path)
    _check_fine_tuning(path, policy_config, features, store)
    tensors = {
        name.removeprefix("model."): tensor
        for name, tensor in ckpt.read_tensors(path, ckpt.WEIGHTS).items()
        if name.startswith("model.")
    }
    own = network.model.state_dict()
    mismatched = sorted(
        name for name in own if name not in tensors or tensors[name].shape != own[name].shape
    )
    if mismatched or set(tensors) - set(own):
        raise TrainingError(
            f"--init-from {path}: its network differs from this policy config "
            f"(missing or reshaped: {mismatched[:5]}, unexpected: "
            f"{sorted(set(tensors) - set(own))[:5]}); fine-tune with the config it was trained with"
        )
    network.model.load_state_dict(tensors)
    log.info("starting from the weights of %s", path)


def _load_resume(path: Path, policy_config: PolicyConfig, data: TrainingData) -> dict[str, Any]:
    if not (path / ckpt.MANIFEST).exists():
        raise TrainingError(f"--resume: no checkpoint in {path} to resume from")
    ckpt.verify(path, with_training=True)
    saved = ckpt.read_json(path, "config.json")
    wanted = json.loads(json.dumps(policy_config.to_json()))
    # --resume may extend a run (--steps); every other field that shapes training must match
    # the saved run's. The batch size is checked against the run's own record: config.json
    # files written before it recorded --batch-size hold the preset's.
    fields = (set(saved) | set(wanted)) - {"train_steps", "batch_size"}
    fields -= policy_config.inference_fields
    diffs = sorted(k for k in fields if saved.get(k) != wanted.get(k))
    if diffs:
        raise TrainingError(
            f"--resume: the policy config differs from {path}/config.json in {diffs}"
        )
    state = ckpt.read_json(path, "training/state.json")
    ran_at = state["train_config"]["batch_size"]
    if ran_at != policy_config.batch_size:
        raise TrainingError(
            f"--resume: batch_size {policy_config.batch_size} differs from the saved run's "
            f"{ran_at} ({path}); leave --batch-size out to continue at {ran_at}"
        )
    trained_on = ckpt.read_json(path, "data.json")["fingerprint"]
    if trained_on != data.fingerprint:
        raise TrainingError(
            f"--resume: the selected training episodes (fingerprint "
            f"{data.fingerprint}) differ from those of {path} ({trained_on})"
        )
    return state


def _restore(path: Path, network, ema, optimizer, scheduler, step: int) -> None:
    state = ckpt.read_json(path, "training/state.json")
    raw_name = "training/raw_model.safetensors" if ema is not None else ckpt.WEIGHTS
    network.load_state_dict(ckpt.read_tensors(path, raw_name))
    if ema is not None:
        ema.network.load_state_dict(ckpt.read_tensors(path, ckpt.WEIGHTS))
    optimizer.load_state_dict(
        _unflatten_optimizer(
            ckpt.read_tensors(path, "training/optimizer.safetensors"), state["optimizer"]
        )
    )
    scheduler.last_epoch = step
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas, strict=True):
        group["lr"] = group["initial_lr"] * factor(step)  # this run's schedule (its --steps)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def _record_digests(path: Path, digests: list[str]) -> None:
    (path / "rank_digests.json").write_text(json.dumps(digests))
