"""A migration process for the crash test: says when it starts working, then migrates."""

from __future__ import annotations

import sys
import time

from robot_learning.store.rebuild import migrate


def main(path: str, to: str | None) -> None:
    print("start", flush=True)
    start = time.perf_counter()
    migrate(path, to)
    print(f"done {time.perf_counter() - start:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
