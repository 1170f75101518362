"""MT-pi's `sim` preset on this CPU: CPU seconds per training step and per policy call.

Records a small store with motion tracks (scripted lift demos + human stand-ins, front and
side cameras at 96x128, tracks from simulator ground truth: ``tests.policies.mtpi_store``,
until `rl tracks label` labels such stores), then times training steps (batch 32) and
``predict_tracks`` (both views, DDIM) on one thread. CPU time (``process_time``), not wall
clock, so a shared machine's load does not count. Run: ``python -m benchmarks.mtpi_speed``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> None:
    import torch

    from policies.data import DataSelection, StepBatches
    from policies.motion_tracks.data import TrackTrainingData
    from policies.policy import build_network
    from policies.registry import preset
    from tests.policies.mtpi_store import record_track_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="sim")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = preset("mtpi", args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        store = record_track_store(
            Path(tmp) / "tracks.zarr", episodes=4, human_episodes=2, image_size=(96, 128)
        )
        data = TrackTrainingData.from_store(
            str(store), config, DataSelection(val_fraction=0.0), cache_images=True, progress=False
        )
        network = build_network(config, data.features, data.statistics(config)).train()
        optimizer = torch.optim.AdamW(network.model.parameter_groups(config.lr, config.lr, 0.0))
        sampler = StepBatches(
            len(data.train), config.batch_size, seed=0, steps=args.steps, weights=data.weights
        )
        cpu = []
        for step in range(args.steps):
            start = time.process_time()
            loss, _ = network(data.train.get_batch(sampler.indices(step)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            cpu.append(time.process_time() - start)
        network.eval()
        k = len(data.features.cameras)
        images = torch.zeros(k, 3, *data.features.image_shapes[0][:2], dtype=torch.uint8)
        current = torch.rand(k, 3, 2) * 60
        calls = []
        for _ in range(10):
            start = time.process_time()
            network.predict_tracks(images, current)
            calls.append(time.process_time() - start)
    params = sum(p.numel() for p in network.parameters()) / 1e6
    step_s = float(np.median(cpu[3:]))
    print(
        f"mtpi {args.preset}: {params:.2f} M parameters, batch {config.batch_size}, "
        f"{args.threads} thread(s)"
    )
    print(
        f"  training step: {step_s:.3f} s CPU (median of {args.steps - 3}), "
        f"{config.train_steps} steps = {config.train_steps * step_s / 60:.0f} min CPU"
    )
    print(
        f"  policy call ({k} views, {config.num_inference_steps} DDIM steps): "
        f"{np.median(calls[2:]):.3f} s CPU"
    )


if __name__ == "__main__":
    main()
