"""An annotation process for the crash test: labels every episode of a store until killed.

Run ``r`` writes ``label(episode, r)`` into every episode (replacing earlier runs), so after a
kill the test can tell a complete annotation (every row from one run) from a torn one.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from robot_learning.store import KeySpec, StoreReader, annotate

SPEC = KeySpec((3, 2), "float32", description="crash-test label")
KEY = "label"


def label(episode: int, run: int, length: int) -> np.ndarray:
    rows = np.arange(length, dtype=np.float32)[:, None, None]
    return (rows + 1000 * run + episode + np.zeros((1, 3, 2), np.float32)).astype(np.float32)


def main(path: str, run: int) -> None:
    annotate.CLAIM_BATCH = 3  # several claims per run, so kills land between them
    reader = StoreReader(path)

    def rows():
        for ep in reader.episodes:
            time.sleep(0.01)
            yield ep.index, {KEY: label(ep.index, run, ep.length)}

    print("start", flush=True)
    annotate.annotate_episodes(path, {KEY: SPEC}, rows(), overwrite=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
