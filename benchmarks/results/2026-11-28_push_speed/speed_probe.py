"""Probe (2026-11-28), before ``ExecutionConfig.speed`` existed: evaluate a checkpoint on push
with every chunk played ``rate`` times faster than predicted, by compressing its times about
its start (what ``speed`` now does inside ``ChunkExecutor.add``).

Run: ``python speed_probe.py CHECKPOINT RATE FIRST_SEED EPISODES > out.json``.
"""

import json
import sys

from policies.evaluate import evaluate
from robot_learning.runtime import executor as ex
from robot_learning.runtime.chunk import ActionChunk

ckpt, rate, seed, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
orig = ex.ChunkExecutor.add


def add(self, chunk, *, received_s=None):
    t = chunk.start_s + (chunk.times_s - chunk.start_s) / rate
    scaled = ActionChunk(t, chunk.positions, chunk.quaternions, chunk.gripper)
    return orig(self, scaled, received_s=received_s)


ex.ChunkExecutor.add = add
report = evaluate(ckpt, task="push", episodes=n, seed=seed, progress=False)
out = report.to_json()
out["probe_rate"] = rate
print(json.dumps(out))
