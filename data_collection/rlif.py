"""``rl store export-rlif``: RLIF-style labels of deployment rollouts, for off-policy RL.

RLIF (Luo et al., "RLIF: Interactive Imitation Learning as Reinforcement Learning", 2023)
needs no reward engineering: the operator's decision to take over *is* the signal. Every
step of a policy/intervention episode gets reward 0, except the step at which a human took
control, which gets -1 (intervention onset). Steps the human controlled are kept and
marked, so a learner can treat them as expert transitions or drop them.

The labels go to one ``.npz`` beside the store, never into it: arrays over every exported
step, in store order (``episode``, ``step``, ``reward``, ``done``, ``control_source``,
``onset``), plus ``episodes`` (the indices exported).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_learning.keys import CONTROL_SOURCE
from robot_learning.runtime.controllers import ControlSource
from robot_learning.store import Source, StoreError, StoreReader


@dataclass(frozen=True)
class RlifSummary:
    episodes: int
    steps: int
    onsets: int  # interventions (reward -1 steps)
    human_steps: int


def rlif_labels(control_source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(reward, onset) of one episode's ``control_source`` sequence."""
    human = np.asarray(control_source) == ControlSource.HUMAN
    onset = human & ~np.concatenate([[False], human[:-1]])
    return np.where(onset, -1.0, 0.0).astype(np.float32), onset


def export_rlif(store: Path | str, out: Path) -> RlifSummary:
    reader = StoreReader(store)
    chosen = reader.select(source=[str(Source.POLICY), str(Source.INTERVENTION)])
    if not chosen:
        raise StoreError(
            f"{store}: no policy or intervention episodes (record some with `rl deploy --store`)"
        )
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("episode", "step", "reward", "done", "control_source", "onset")
    }
    for index in chosen:
        info = reader.episode(index).info
        if CONTROL_SOURCE not in info.keys:
            raise StoreError(
                f"{store}: {info.source} episode {index} has no "
                f"{CONTROL_SOURCE!r}; it was not recorded by the deployment runtime"
            )
        source = reader.read_episode(index, keys=[CONTROL_SOURCE])[CONTROL_SOURCE]
        reward, onset = rlif_labels(source)
        n = len(source)
        done = np.zeros(n, dtype=bool)
        done[-1] = True
        for key, value in (
            ("episode", np.full(n, index)),
            ("step", np.arange(n)),
            ("reward", reward),
            ("done", done),
            ("control_source", source.astype(np.uint8)),
            ("onset", onset),
        ):
            parts[key].append(value)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, episodes=np.asarray(chosen), **arrays)
    return RlifSummary(
        len(chosen),
        len(arrays["step"]),
        int(arrays["onset"].sum()),
        int((arrays["control_source"] == ControlSource.HUMAN).sum()),
    )


def register(store_subparsers: argparse._SubParsersAction) -> None:
    parser = store_subparsers.add_parser(
        "export-rlif",
        help="RLIF labels (-1 at intervention onset) of deployment rollouts",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("path", help="store with policy/intervention episodes")
    parser.add_argument("--out", type=Path, required=True, help="labels file (.npz)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = export_rlif(args.path, args.out)
    print(
        f"{args.out}: {summary.steps} steps of {summary.episodes} episodes, "
        f"{summary.onsets} interventions, {summary.human_steps} human-controlled steps"
    )
    return 0
