"""The probe behind ``probe_*.json`` (kept for provenance; ``rl eval --samples N`` is the
package's version of ``medoid``): a Diffusion checkpoint drawing N chunks a query, one played.

  medoid    the draw whose TCP path lies nearest the others' (as policies.network.medoid_chunk)
  coherent  the draw nearest the previous played chunk over the times both cover

Usage: python select_probe.py CHECKPOINT FIRST_SEED EPISODES N medoid|coherent OUT.json
"""

import dataclasses
import json
import sys

import numpy as np
import torch

import policies.evaluate as ev
from policies.policy import ChunkPolicy, load_policy
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH
from robot_learning.runtime import ActionChunk

CHECKPOINT, SEED, EPISODES, N, MODE, OUT = sys.argv[1:7]
SEED, EPISODES, N = int(SEED), int(EPISODES), int(N)


class Selecting(ChunkPolicy):
    def reset(self) -> None:
        super().reset()
        self._previous = None

    def act(self, observation):
        self.observe(observation)
        window = self._window(observation.time_s)
        frames = {
            cam: torch.from_numpy(np.stack([o[cam] for o in window]))
            .permute(0, 3, 1, 2)[None]
            .expand(N, -1, -1, -1, -1)
            for cam in self.features.cameras
        }
        poses = np.stack([np.asarray(o[EE_POSE], np.float64) for o in window])
        ee = torch.from_numpy(poses)[None].expand(N, -1, -1)
        widths = [float(o[GRIPPER_WIDTH]) for o in window]
        grip = torch.tensor(widths, dtype=torch.float64)[None].expand(N, -1)
        actions = self.network.predict_actions(frames, ee, grip).cpu().numpy()  # (N, H, 8)
        times = observation.time_s + np.arange(actions.shape[1]) * self.features.period_s
        positions = actions[:, :, :3]
        pick = None
        if MODE == "coherent" and self._previous is not None:
            old_times, old_positions = self._previous
            pairs = [
                (i, j)
                for i, t in enumerate(times)
                for j in [int(np.argmin(np.abs(old_times - t)))]
                if abs(old_times[j] - t) < 1e-6
            ]
            if pairs:
                ii, jj = np.array(pairs).T
                gaps = np.linalg.norm(positions[:, ii] - old_positions[jj][None], axis=-1)
                pick = int(np.argmin(gaps.mean(axis=1)))
        if pick is None:
            spread = np.linalg.norm(positions[:, None] - positions[None], axis=-1).mean(axis=-1)
            pick = int(np.argmin(spread.sum(axis=1)))
        self._previous = (times, positions[pick])
        return ActionChunk.from_vectors(times, actions[pick])


def load(path, device="cpu"):
    base = load_policy(path, device=device)
    return Selecting(base.network, device=device, checkpoint=base.checkpoint)


ev.load_policy = load
torch.set_num_threads(1)
report = ev.evaluate(CHECKPOINT, task="push", episodes=EPISODES, seed=SEED)
out = dataclasses.asdict(report)
out.pop("latency_ms", None)
out["note"] = f"probe: {N} samples, {MODE}"
with open(OUT, "w") as f:
    json.dump(out, f, indent=1)
print(OUT, report.successes, report.episodes, round(report.latency_ms_p50))
