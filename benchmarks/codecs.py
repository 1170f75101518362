"""Image codec trade-off on rendered 640x480 frames of the simulated FR3 workcell, one core.

Prints encodes/s, decodes/s, compression ratio and PSNR for the color codecs the store
offers (JPEG 4:4:4 and 4:2:0, JPEG-XL effort 1, PNG for reference) and the depth codecs
(the store's blosc-zstd bit-shuffle, plain zstd, 16-bit PNG).

    python -m benchmarks.codecs [--frames 12]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("MUJOCO_GL", "egl")

import imagecodecs  # noqa: E402
import numcodecs  # noqa: E402
import numpy as np  # noqa: E402


def rendered_frames(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Color and depth frames of the stack task along an expert episode."""
    from robot_learning.sim.rollout import run_episode
    from robot_learning.sim.workcell import Workcell

    color, depth = [], []
    with Workcell(
        task="stack", seed=3, cameras=("front",), image_size=(480, 640), with_depth=True
    ) as workcell:

        def grab(step: int, *_: object) -> None:
            if step % 60 == 0 and len(color) < count:
                color.append(workcell.render(["front"])["front"])
                depth.append(workcell.render_depth(["front"])["front"])

        run_episode(workcell, seed=3, on_step=grab)
    return color, depth


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def measure(
    frames: list[np.ndarray],
    encode: Callable[[np.ndarray], bytes],
    decode: Callable[[bytes], np.ndarray],
    repeat: int = 3,
) -> dict[str, float]:
    encoded = [encode(f) for f in frames]
    start = time.process_time()
    for _ in range(repeat):
        for f in frames:
            encode(f)
    enc = repeat * len(frames) / (time.process_time() - start)
    start = time.process_time()
    for _ in range(repeat):
        for e in encoded:
            decode(e)
    dec = repeat * len(frames) / (time.process_time() - start)
    raw = sum(f.nbytes for f in frames)
    quality = float(
        np.mean([psnr(decode(e).reshape(f.shape), f) for e, f in zip(encoded, frames, strict=True)])
    )
    return {
        "encode/s": enc,
        "decode/s": dec,
        "ratio": raw / sum(len(e) for e in encoded),
        "psnr_db": quality,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    color, depth = rendered_frames(args.frames)
    print(f"{len(color)} rendered 640x480 frames; CPU time of one thread")
    blosc = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.BITSHUFFLE)
    rows = {
        "color JPEG q90 4:4:4 (store default)": measure(
            color,
            lambda f: imagecodecs.jpeg8_encode(f, level=90, subsampling="444"),
            imagecodecs.jpeg8_decode,
        ),
        "color JPEG q90 4:2:0": measure(
            color,
            lambda f: imagecodecs.jpeg8_encode(f, level=90, subsampling="420"),
            imagecodecs.jpeg8_decode,
        ),
        "color JPEG-XL q90 effort 1": measure(
            color,
            lambda f: imagecodecs.jpegxl_encode(f, level=90, effort=1),
            imagecodecs.jpegxl_decode,
            repeat=1,
        ),
        "color PNG level 1": measure(
            color, lambda f: imagecodecs.png_encode(f, level=1), imagecodecs.png_decode, repeat=1
        ),
        "depth blosc-zstd1 bitshuffle (store)": measure(
            depth, lambda f: blosc.encode(f), lambda b: np.frombuffer(blosc.decode(b), np.uint16)
        ),
        "depth zstd level 1": measure(
            depth,
            lambda f: imagecodecs.zstd_encode(f.tobytes(), level=1),
            lambda b: np.frombuffer(imagecodecs.zstd_decode(b), np.uint16),
        ),
        "depth PNG 16-bit level 1": measure(
            depth, lambda f: imagecodecs.png_encode(f, level=1), imagecodecs.png_decode, repeat=1
        ),
    }
    print(f"{'codec':<40} {'encode/s':>9} {'decode/s':>9} {'ratio':>7} {'PSNR dB':>8}")
    for name, r in rows.items():
        print(
            f"{name:<40} {r['encode/s']:>9,.0f} {r['decode/s']:>9,.0f} {r['ratio']:>6.1f}x "
            f"{r['psnr_db']:>8.1f}"
        )


if __name__ == "__main__":
    main()
