"""Policy speed on the peer's exact setting, and deployment latency at our sizes.

Part 1, side by side with LeRobot 0.4.4 (``../shared/peers/lerobot/bench_lerobot.py``, run
right before or after this in the same session, same thread count): 2 cameras 3x96x96,
state 8, action 8, batch 8, 2 CPU threads, random weights.
  ACT: chunk 100, dim 512, 4 encoder / 1 decoder layers, 4 VAE layers (preset ``bench``).
  Diffusion: horizon 16, 8 executed, down dims 512/1024/2048, GroupNorm, one shared
  ResNet-18, 96 -> 84 crop, 10 DDIM steps (preset ``bench``).
  (a) training step: normalization (+ random crop for Diffusion), forward, backward, gradient
      clipping and AdamW step as ``rl train`` does them (``train.clip_gradients``,
      ``train.make_optimizer``: fused); median after one warm-up step.
  (b1) one model call (batch 1): ACT's chunk, Diffusion's chunk with 10 DDIM steps.
  (b3) the same call through the deployment path: ``ChunkPolicy.act`` on a raw uint8
       observation (resize, normalization, 6D rotations and back, ActionChunk).
Part 2, deployment sizes (2 cameras 240x320, the ``sim`` presets and ``default`` ACT):
  p50/p99 of ``ChunkPolicy.act``.

With ``--peer /tmp/lerobot-peer`` (the side environment of ``../shared/peers/lerobot``) the
peer's timing script runs in that environment right after each of ours, policy by policy,
``--rounds`` times (ours, theirs, ours, theirs...), and the table gives ours / theirs per
round and the median ratio: the machine's speed swings between runs, so only ratios of
neighbouring runs mean anything.

Run: ``python -m benchmarks.policy_speed [--train-steps N] [--calls N] [--peer DIR --rounds R]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from policies.features import PolicyFeatures
from policies.images import random_crop
from policies.model import ModelShapes
from policies.normalization import FeatureStats, NormalizationStats
from policies.policy import ChunkPolicy, build_network
from policies.registry import get_policy, preset
from policies.train import clip_gradients, make_optimizer
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH
from robot_learning.runtime import Observation

CAMERAS = ("camera_high", "camera_wrist")
BATCH, STATE, ACTION = 8, 8, 8


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.1f} ms (min {min(values) * 1e3:.1f})"


def time_ours(name: str, train_steps: int, calls: int) -> dict[str, float]:
    """Part 1 for one policy: the model alone on LeRobot's inputs."""
    config = preset(name, "bench")
    rate = 50.0 if name == "act" else 10.0  # ACT's chunk of 100 at 50 Hz; Diffusion's 16 at 10
    horizon = config.horizon_steps(rate)
    shapes = ModelShapes(
        num_cameras=2,
        image_size=config.model_image_size,
        state_dim=STATE,
        action_dim=ACTION,
        obs_horizon=config.obs_horizon,
        horizon=horizon,
    )
    torch.manual_seed(0)
    model = get_policy(name).build_model(config, shapes)
    params = sum(p.numel() for p in model.parameters())
    optimizer = make_optimizer(model, config)  # the trainer's optimizer and clipping
    t = config.obs_horizon
    raw_images = torch.rand(BATCH, t, 2, 3, 96, 96)
    state, action = torch.randn(BATCH, t, STATE), torch.randn(BATCH, horizon, ACTION)
    pad = torch.zeros(BATCH, horizon, dtype=torch.bool)
    mean, std = torch.full((3, 1, 1), 0.5), torch.full((3, 1, 1), 0.25)
    model.train()
    times = []
    for i in range(train_steps + 1):
        start = time.perf_counter()
        images = raw_images
        if config.crop_size is not None:
            images = random_crop(images, config.crop_size)
        loss, _ = model.compute_loss((images - mean) / std, state, action, pad)
        loss.backward()
        clip_gradients(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - start)
    model.eval()
    one_images = raw_images[:1]
    if config.crop_size is not None:
        one_images = one_images[..., 6:90, 6:90]
    calls_s = []
    with torch.inference_mode():
        model.predict(one_images, state[:1])
        for _ in range(calls):
            start = time.perf_counter()
            model.predict((one_images - mean) / std, state[:1])
            calls_s.append(time.perf_counter() - start)
    pipeline = deployment_latency(config, (96, 96), rate, calls)
    print(f"== {name} (ours, preset bench): {params / 1e6:.2f} M parameters, chunk {horizon}")
    print(f"   (a) train step batch {BATCH}: {_ms(times)}")
    print(f"   (b1) model call: {_ms(calls_s)}")
    print(f"   (b3) ChunkPolicy.act on a raw observation: {_ms(pipeline)}")
    return {
        "train_ms": statistics.median(times) * 1e3,
        "call_ms": statistics.median(calls_s) * 1e3,
        "pipeline_ms": statistics.median(pipeline) * 1e3,
    }


def deployment_latency(
    config, image_hw: tuple[int, int], rate_hz: float, calls: int
) -> list[float]:
    """Wall time of ``ChunkPolicy.act`` (random weights) on a raw uint8 observation."""
    features = PolicyFeatures(cameras=CAMERAS, image_shapes=((*image_hw, 3),) * 2, rate_hz=rate_hz)
    ones = FeatureStats([0.0] * 10, [1.0] * 10, [-1.0] * 10, [1.0] * 10)
    stats = NormalizationStats(ones, ones, [[0.5] * 3] * 2, [[0.25] * 3] * 2)
    torch.manual_seed(0)
    policy = ChunkPolicy(build_network(config, features, stats))
    rng = np.random.default_rng(0)
    values = {cam: rng.integers(0, 255, (*image_hw, 3), dtype=np.uint8) for cam in CAMERAS}
    values[EE_POSE] = np.array([0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])
    values[GRIPPER_WIDTH] = np.float64(0.08)
    out = []
    policy.reset()
    with torch.inference_mode():
        for i in range(calls + 1):
            observation = Observation(time_s=i / rate_hz, values=values)
            start = time.perf_counter()
            policy.act(observation)
            if i:
                out.append(time.perf_counter() - start)
    return out


# ../shared/peers/lerobot/ beside the checkout (the main repo's or a worktree's parents)
PEER_SCRIPT = next(
    (
        parent / "shared/peers/lerobot/bench_lerobot.py"
        for parent in Path(__file__).resolve().parents
        if (parent / "shared/peers/lerobot/bench_lerobot.py").exists()
    ),
    Path("../shared/peers/lerobot/bench_lerobot.py"),
)
PEER_NAMES = {"act": "act", "diffusion": "diff044_ddim10"}
FIGURES = (("train_ms", "(a)"), ("call_ms", "(b1)"), ("pipeline_ms", "(b3)"))


def time_peer(name: str, peer: Path, train_steps: int, calls: int) -> dict[str, float]:
    """LeRobot 0.4.4's figures for the same policy, from its timing script in its venv."""
    python = peer / "bin" / "python"
    if not python.exists():
        raise SystemExit(
            f"--peer {peer}: no {python}; build it with "
            f"bash {PEER_SCRIPT.parent / 'setup.sh'} {peer}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [
                str(python),
                str(PEER_SCRIPT),
                PEER_NAMES[name],
                "--train-steps",
                str(train_steps),
                "--infer-calls",
                str(calls),
                "--out",
                str(Path(tmp) / "peer.txt"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode:
        raise SystemExit(f"peer {PEER_SCRIPT} {PEER_NAMES[name]} failed:\n{done.stderr[-2000:]}")
    print("\n".join(line for line in done.stdout.splitlines() if not line.startswith("#")))
    out = {}
    for key, tag in FIGURES:
        found = re.search(re.escape(tag) + r"[^\n]*?: ([\d.]+) ms", done.stdout)
        if found is None:
            raise SystemExit(f"peer output has no {tag} figure:\n{done.stdout}")
        out[key] = float(found.group(1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-deployment", action="store_true")
    parser.add_argument(
        "--peer",
        type=Path,
        default=None,
        help="LeRobot 0.4.4 venv (../shared/peers/lerobot/setup.sh): time it "
        "after each of ours and print the ratios",
    )
    parser.add_argument("--rounds", type=int, default=1, help="ours/peer pairs per policy")
    parser.add_argument(
        "--policies", nargs="+", default=["act", "diffusion"], choices=["act", "diffusion"]
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    ratios: dict[str, list[dict[str, float]]] = {name: [] for name in args.policies}
    for round_ in range(args.rounds if args.peer else 1):
        for name in args.policies:
            ours = time_ours(name, args.train_steps, args.calls)
            if args.peer is None:
                continue
            theirs = time_peer(name, args.peer, args.train_steps, args.calls)
            ratios[name].append({k: ours[k] / theirs[k] for k, _ in FIGURES})
            print(
                f"   round {round_ + 1} {name}, ours / LeRobot: "
                + ", ".join(
                    f"{tag} {ours[k]:.1f} / {theirs[k]:.1f} ms = {ours[k] / theirs[k]:.2f}x"
                    for k, tag in FIGURES
                ),
                flush=True,
            )
    if args.peer:
        print(f"== ours / LeRobot 0.4.4, median over {args.rounds} back-to-back rounds")
        for name, rounds in ratios.items():
            print(
                f"   {name}: "
                + ", ".join(
                    f"{tag} {statistics.median(r[k] for r in rounds):.2f}x "
                    f"({min(r[k] for r in rounds):.2f}-{max(r[k] for r in rounds):.2f})"
                    for k, tag in FIGURES
                )
            )
    if args.skip_deployment:
        return
    print("== deployment sizes: 2 cameras 240x320, ChunkPolicy.act")
    for name, preset_name in (
        ("act", "sim"),
        ("diffusion", "sim"),
        ("act", "default"),
        ("diffusion", "default"),
    ):
        config = (
            dataclasses.replace(preset(name, preset_name), image_size=(240, 320))
            if preset_name == "default"
            else preset(name, preset_name)
        )
        lat = np.asarray(deployment_latency(config, (240, 320), 10.0, args.calls)) * 1e3
        print(
            f"   {name} {preset_name}: p50 {np.percentile(lat, 50):.1f} ms, "
            f"p99 {np.percentile(lat, 99):.1f} ms"
        )


if __name__ == "__main__":
    main()
