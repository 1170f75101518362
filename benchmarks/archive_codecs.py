"""Which codec `rl store compact` re-encodes to: bytes per frame at equal PSNR.

Sweeps the quality of JPEG (4:4:4 and 4:2:0) and JPEG-XL (efforts 1, 3, 5) on rendered
640x480 frames of the simulated workcell, interpolates each family's bytes per frame at
40, 42 and 44 dB PSNR (the store's recording default, JPEG q90 4:4:4, gives about 44.5), and
prints encode and decode time per frame (one core). The densest family at the recording's PSNR is
compact's default.

    python -m benchmarks.archive_codecs [--frames 6]
"""

from __future__ import annotations

import argparse
import time

import imagecodecs
import numpy as np

from benchmarks.codecs import psnr, rendered_frames

TARGETS_DB = (40.0, 42.0, 44.0)
QUALITIES = (30, 45, 60, 70, 75, 80, 85, 90, 95)


def families() -> dict[str, tuple]:
    def jpeg(sub: str):  # noqa: ANN202
        return lambda f, q: imagecodecs.jpeg8_encode(f, level=q, subsampling=sub)

    def jxl(effort: int):  # noqa: ANN202
        return lambda f, q: imagecodecs.jpegxl_encode(f, level=q, effort=effort)

    return {
        "JPEG 4:4:4": (jpeg("444"), imagecodecs.jpeg8_decode),
        "JPEG 4:2:0": (jpeg("420"), imagecodecs.jpeg8_decode),
        "JPEG-XL effort 1": (jxl(1), imagecodecs.jpegxl_decode),
        "JPEG-XL effort 3": (jxl(3), imagecodecs.jpegxl_decode),
        "JPEG-XL effort 5": (jxl(5), imagecodecs.jpegxl_decode),
    }


Point = tuple[int, float, float, float, float]  # quality, bytes, PSNR dB, encode/decode ms


def sweep(frames: list[np.ndarray], encode, decode) -> list[Point]:  # noqa: ANN001
    """One point per quality, averaged over the frames."""
    points = []
    for quality in QUALITIES:
        start = time.process_time()
        encoded = [encode(f, quality) for f in frames]
        encode_ms = 1000 * (time.process_time() - start) / len(frames)
        start = time.process_time()
        decoded = [decode(e) for e in encoded]
        decode_ms = 1000 * (time.process_time() - start) / len(frames)
        db = float(
            np.mean([psnr(d.reshape(f.shape), f) for d, f in zip(decoded, frames, strict=True)])
        )
        points.append(
            (quality, float(np.mean([len(e) for e in encoded])), db, encode_ms, decode_ms)
        )
    return points


def bytes_at(points: list[Point], target_db: float) -> float | None:
    """Bytes per frame at ``target_db``, interpolated in log bytes; None outside the sweep."""
    dbs = np.array([p[2] for p in points])
    order = np.argsort(dbs)
    dbs = dbs[order]
    if not dbs[0] <= target_db <= dbs[-1]:
        return None
    log_bytes = np.log(np.array([p[1] for p in points]))[order]
    return float(np.exp(np.interp(target_db, dbs, log_bytes)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    frames, _ = rendered_frames(args.frames)
    print(f"{len(frames)} rendered 640x480 frames; quality sweep {QUALITIES}", flush=True)
    table = {}
    for name, (encode, decode) in families().items():
        points = sweep(frames, encode, decode)
        table[name] = points
        print(
            f"  {name:<18} "
            + "  ".join(f"q{q} {b / 1e3:.1f} kB {db:.1f} dB" for q, b, db, *_ in points)
            + f"; encode {np.mean([p[3] for p in points]):.1f} ms, decode "
            f"{np.mean([p[4] for p in points]):.1f} ms a frame",
            flush=True,
        )
    print("\nbytes per frame at equal PSNR (kB; x = smaller than JPEG 4:4:4)")
    print(f"  {'codec':<18} " + " ".join(f"{t:>16.0f} dB" for t in TARGETS_DB))
    reference = {t: bytes_at(table["JPEG 4:4:4"], t) for t in TARGETS_DB}
    for name, points in table.items():
        cells = []
        for t in TARGETS_DB:
            b = bytes_at(points, t)
            cells.append(
                f"{'-':>19}" if b is None else f"{b / 1e3:>9.1f} ({reference[t] / b:4.2f}x)"
            )
        print(f"  {name:<18} " + " ".join(cells))
    best = min(
        (n for n in table if bytes_at(table[n], TARGETS_DB[-1])),
        key=lambda n: bytes_at(table[n], TARGETS_DB[-1]),
    )
    print(f"\ndensest at {TARGETS_DB[-1]:.0f} dB: {best}")


if __name__ == "__main__":
    main()
