"""``rl sim collect`` as the tests call it: in this process, through the real CLI."""

from __future__ import annotations

from pathlib import Path

from robot_learning.cli import main


def sim_collect(store: Path, *options: str, hand: bool = False) -> int:
    """Exit code of ``rl sim collect --store STORE OPTIONS...`` (with ``--embodiment hand``
    when ``hand``: the hand stand-in filmed by the fixed cameras)."""
    embodiment = ["--embodiment", "hand"] if hand else []
    return main(["sim", "collect", *embodiment, "--store", str(store), *options])
