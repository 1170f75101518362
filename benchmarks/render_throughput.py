"""Offscreen render throughput of the workcell cameras (frames/s), per resolution and mesh set.

``light`` are the shipped vertex-clustered FR3 meshes, ``full`` franky-sim's originals;
shadows and reflections are off in both. Run: ``python -m benchmarks.render_throughput``.
"""

from __future__ import annotations

import argparse
import time

from robot_learning.sim.workcell import Workcell

CAMERAS = ("front", "wrist", "side")


def frames_per_second(workcell: Workcell, camera: str, frames: int) -> float:
    workcell.render([camera])  # warm-up
    start = time.perf_counter()
    for _ in range(frames):
        workcell.render([camera])
    return frames / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args(argv)
    print(f"{'meshes':7} {'size':8} " + " ".join(f"{c:>8}" for c in CAMERAS) + "  (frames/s)")
    for light in (True, False):
        for size in ((240, 320), (480, 640)):
            with Workcell(
                task="stack", cameras=CAMERAS, image_size=size, light_meshes=light
            ) as cell:
                fps = [frames_per_second(cell, camera, args.frames) for camera in CAMERAS]
            label = "light" if light else "full"
            print(f"{label:7} {size[0]}x{size[1]:<4} " + " ".join(f"{f:8.1f}" for f in fps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
