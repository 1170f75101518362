"""MediaPipe hand tracker: speed per frame, pixel error, dropout and side-swap rates.

Measured on MuJoCo-rendered hands (tests/data_collection/rendered_hand.py) in random poses,
against their exact landmarks; these sizes feed the simulated tracker's error model. The
error includes the offset between the rendered capsule end points and MediaPipe's anatomical
landmark definitions, so it is an upper bound on the detector's own noise on such images.
    python -m benchmarks.hand_tracker [--images 80]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from data_collection.hand_tracking.registry import make_tracker  # noqa: E402
from tests.data_collection.rendered_hand import HandPose, render_hands  # noqa: E402


def random_pose(rng: np.random.Generator, side: str, x: float) -> HandPose:
    return HandPose(
        side,
        (x + rng.uniform(-0.02, 0.02), rng.uniform(-0.03, 0.03)),
        rng.uniform(-0.6, 0.6),
        rng.uniform(0.0, 0.8),
        rng.uniform(-0.1, 0.1),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    tracker = make_tracker("mediapipe", video=False)
    errors, per_landmark, found = [], [], []
    swaps = hands = 0
    times = []
    for i in range(args.images):
        poses = (
            [random_pose(rng, "right", -0.08), random_pose(rng, "left", 0.08)]
            if i % 2
            else [random_pose(rng, str(rng.choice(["right", "left"])), 0.0)]
        )
        image, truth = render_hands(poses)
        start = time.perf_counter()
        observed = tracker.detect(image, float(i))
        times.append(time.perf_counter() - start)
        for side, kp in truth.items():
            hands += 1
            same = [o for o in observed if o.handedness == side]
            other = [
                o
                for o in observed
                if o.handedness != side and np.linalg.norm(o.keypoints - kp, axis=1).mean() < 30
            ]
            swaps += bool(other) and not same
            found.append(bool(same))
            if same:
                e = np.linalg.norm(same[0].keypoints - kp, axis=1)
                errors.append(e.mean())
                per_landmark.append(e)
    tracker.close()
    e = np.concatenate(per_landmark)
    print(
        f"images {args.images}, hands {hands} (640x480, poses: roll +-0.6 rad, curl 0-0.8 "
        f"rad/joint, depth +-0.1 m)"
    )
    print(
        f"image mode: {1e3 * np.median(times):.0f} ms/frame median "
        f"({1e3 * np.mean(times):.0f} mean)"
    )
    print(f"dropout {1 - np.mean(found):.1%}, side swaps {swaps / hands:.1%}")
    print(
        f"pixel error per landmark: mean {e.mean():.1f}, median {np.median(e):.1f}, "
        f"p95 {np.percentile(e, 95):.1f} px; per hand mean {np.mean(errors):.1f} px"
    )
    print("per landmark mean px:", np.round(np.mean(per_landmark, axis=0), 1).tolist())
    # video mode on a moving hand: tracking between frames skips the palm detector
    video = make_tracker("mediapipe", video=True)
    frames = [
        render_hands([HandPose("right", (-0.06 + 0.004 * k, 0.0), 0.1, 0.2)])[0] for k in range(30)
    ]
    start = time.perf_counter()
    for k, frame in enumerate(frames):
        video.detect(frame, k / 30)
    print(
        f"video mode: {1e3 * (time.perf_counter() - start) / len(frames):.0f} ms/frame "
        "(30 frames, one hand)"
    )
    video.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
