"""``make bench``: every benchmark in turn, each in its own process, figures printed."""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = (
    "store_write",
    "store_read",
    "store_shards",
    "store_scale",
    "archive_codecs",
    "codecs",
    "sim_speed",
    "render_throughput",
    "franky_roundtrip",
    "ros_transport",
    "bag_import",
    "human_sim",
    "lerobot_export",
    "track_geometry",
    "mtpi_speed",
    "policy_speed",  # policy_success (collect, train, eval) takes hours: run it on its own
)


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n### benchmarks.{name}", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"])
        print(
            f"### {name}: {time.perf_counter() - start:.0f} s, exit {result.returncode}", flush=True
        )
        if result.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
