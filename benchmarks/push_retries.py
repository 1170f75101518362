"""How often a store's push demonstrations re-try: descents of the hand to push height after
the first, per successful episode.

A re-try (the expert lifts, lines up again and pushes anew) looks in a frame much like the
start of a push, so many of them make demonstrations a policy cannot tell apart; this counts
them from the recorded TCP height alone, for any push store (README, push).

Run: ``python -m benchmarks.push_retries STORE [STORE ...]``
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from robot_learning.keys import EE_POSE
from robot_learning.store.reader import StoreReader

# The push expert pushes with its TCP at 2.2 cm and hovers at 10 cm: a crossing of 4 cm on the
# way down is one descent to push height.
PUSH_HEIGHT_M = 0.04


def descents(tcp_z: np.ndarray, below_m: float = PUSH_HEIGHT_M) -> int:
    """Downward crossings of ``below_m`` (an episode starting below counts none)."""
    return int(np.sum((tcp_z[1:] < below_m) & (tcp_z[:-1] >= below_m)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+")
    args = parser.parse_args(argv)
    for path in args.stores:
        reader = StoreReader(path)
        retries, lengths = [], []
        for episode in reader.episodes:
            if not episode.info.success or episode.info.task != "push":
                continue
            z = reader.read_episode(episode.info.index, [EE_POSE])[EE_POSE][:, 2]
            retries.append(max(descents(z) - 1, 0))
            lengths.append(len(z))
        if not retries:
            print(f"{path}: no successful push episodes", file=sys.stderr)
            return 1
        counts = np.array(retries)
        print(
            f"{path}: {len(counts)} successful push episodes, {counts.mean():.2f} re-tries "
            f"an episode, {int((counts > 0).sum())} with at least one, "
            f"{np.mean(lengths):.1f} steps an episode"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
