"""A writer process for the crash test: appends deterministic episodes until killed.

Episode i has seed i and ``length(i)`` steps, so the test can regenerate exactly what every
committed episode must contain.
"""

from __future__ import annotations

import sys

from robot_learning.store import StoreWriter
from tests.store import helpers


def length(seed: int) -> int:
    return 5 + (seed * 7) % 17


def main(path: str, episodes: int) -> None:
    # The test times its kill from this line: on a loaded machine the imports above can take
    # longer than its whole random delay, and a kill that always lands before the store is
    # opened tests nothing.
    print("started", flush=True)
    with StoreWriter(path, helpers.schema()) as writer:
        for _ in range(episodes):
            seed = writer.num_episodes
            data = helpers.episode(seed, length(seed))
            writer.begin_episode(source="teleop", task="crash", notes={"seed": seed})
            for t in range(length(seed)):
                writer.append({k: v[t] for k, v in data.items()})
            writer.commit(success=True)
            print(f"committed {seed}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
