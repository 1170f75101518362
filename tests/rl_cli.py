"""``rl`` as a user runs it: its own process, from the repository root, output captured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_rl(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``rl ARGS...`` to its end (at most ``timeout`` s); exit code, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "robot_learning.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
