"""Ctrl-C during ``rl sim collect`` keeps every committed episode and drops the open one,
for both embodiments (they share one collection loop)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from robot_learning.errors import ExitCode
from robot_learning.store import StoreReader
from robot_learning.store.validate import validate
from tests.rl_cli import ROOT


def _committed(store) -> int:
    try:
        return StoreReader(store).num_episodes
    except Exception:  # not created yet
        return 0


@pytest.mark.parametrize("embodiment", ["robot", "hand"])
def test_ctrl_c_keeps_the_committed_episodes_and_drops_the_open_one(tmp_path, embodiment):
    store = tmp_path / "demos.zarr"
    command = [sys.executable, "-m", "robot_learning.cli", "sim", "collect", "--task", "lift"]
    command += ["--embodiment", embodiment, "--episodes", "50", "--size", "48x64"]
    process = subprocess.Popen(
        [*command, "--store", str(store)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        while _committed(store) < 1:
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no episode committed in 240 s"
            time.sleep(0.2)
        time.sleep(1.0)  # into the next episode
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == ExitCode.INTERRUPTED, stderr[-2000:]
    assert "committed episodes are kept, the open one was discarded" in stderr
    assert "Traceback" not in stderr
    assert validate(store) == []
    reader = StoreReader(store)
    assert 1 <= reader.num_episodes < 50
    seeds = [reader.episode(i).info.notes["seed"] for i in range(reader.num_episodes)]
    assert seeds == list(range(reader.num_episodes)), "every kept episode is whole, in order"
