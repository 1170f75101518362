"""Probe (not project code): Diffusion with N chunks sampled per query and one selected.
modes: medoid (closest to the others), coherent (closest to the previous chosen chunk over the
overlapping times; medoid on the first query). Usage: select_probe.py CKPT SEED EPISODES N MODE OUT.json"""
import json, sys
import numpy as np, torch
import policies.evaluate as ev
from policies.policy import ChunkPolicy, load_policy
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH
from robot_learning.runtime import ActionChunk

ckpt, seed, episodes, n, mode, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]

class Selecting(ChunkPolicy):
    def reset(self):
        super().reset(); self._prev = None
    def act(self, observation):
        self.observe(observation)
        window = self._window(observation.time_s)
        frames = {cam: torch.from_numpy(np.stack([o[cam] for o in window])).permute(0, 3, 1, 2)[None].expand(n, -1, -1, -1, -1)
                  for cam in self.features.cameras}
        ee = torch.from_numpy(np.stack([np.asarray(o[EE_POSE], np.float64) for o in window]))[None].expand(n, -1, -1)
        grip = torch.tensor([float(o[GRIPPER_WIDTH]) for o in window], dtype=torch.float64)[None].expand(n, -1)
        actions = self.network.predict_actions(frames, ee, grip).cpu().numpy()  # (n, H, 8)
        times = observation.time_s + np.arange(actions.shape[1]) * self.features.period_s
        pos = actions[:, :, :3]
        pick = None
        if mode == "coherent" and self._prev is not None:
            pt, pp = self._prev
            overlap = [(i, j) for i, t in enumerate(times) for j in [int(np.argmin(np.abs(pt - t)))] if abs(pt[j] - t) < 1e-6]
            if overlap:
                ii, jj = np.array(overlap).T
                d = np.linalg.norm(pos[:, ii] - pp[jj][None], axis=-1).mean(axis=1)
                pick = int(np.argmin(d))
        if pick is None:
            d = np.linalg.norm(pos[:, None] - pos[None], axis=-1).mean(axis=-1).sum(axis=1)
            pick = int(np.argmin(d))
        self._prev = (times, pos[pick])
        return ActionChunk.from_vectors(times, actions[pick])

def load(path, device="cpu"):
    base = load_policy(path, device=device)
    return Selecting(base.network, device=device, checkpoint=base.checkpoint)

ev.load_policy = load
torch.set_num_threads(1)
r = ev.evaluate(ckpt, task="push", episodes=episodes, seed=seed)
import dataclasses
d = dataclasses.asdict(r); d.pop("latency_ms", None); d["note"] = f"probe: {n} samples, {mode}"
json.dump(d, open(out, "w"), indent=1)
print(out, r.successes, r.episodes, "p50", round(r.latency_ms_p50), "p99", round(r.latency_ms_p99))
