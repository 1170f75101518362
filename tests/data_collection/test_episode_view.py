"""``rl store view``: an episode to a rerun recording (read back with rerun's own reader), to
an MP4 (decoded with PyAV) and a GIF, tracks drawn where they are; clear errors."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
rr = pytest.importorskip("rerun")

from data_collection.episode_view import (  # noqa: E402
    TRACK_COLORS,
    load_view,
    strip_frame,
    viewer_is_open,
)
from robot_learning import keys  # noqa: E402
from robot_learning.cli import main as rl  # noqa: E402
from tests.store.recorded import LENGTHS, SHAPE, recording_store  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return recording_store(tmp_path_factory.mktemp("view") / "demos.zarr")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rrd_rows(path: Path) -> dict[str, int]:
    """Logged (non-static) rows per entity, as rerun's own RRD reader sees the file."""
    from rerun.chunk import RrdReader

    rows: dict[str, int] = {}
    for chunk in RrdReader(path).stream():
        if not chunk.is_static:
            rows[chunk.entity_path] = rows.get(chunk.entity_path, 0) + chunk.num_rows
    return rows


def test_rrd_holds_every_camera_track_series_and_control_step(store, tmp_path, capsys):
    out = tmp_path / "episode1.rrd"
    assert rl(["store", "view", str(store), "1", "--out", str(out)]) == 0
    assert f"rerun {out}" in capsys.readouterr().out
    n = LENGTHS[1]
    rows = rrd_rows(out)
    for entity in (
        "/cameras/front",
        "/cameras/wrist",
        "/cameras/front/track",
        f"/series/{keys.ACTION}",
        f"/series/{keys.EE_POSE}",
        f"/series/{keys.GRIPPER_WIDTH}",
        "/control_source",
    ):
        assert rows.get(entity) == n, (entity, rows)
    assert "/cameras/wrist/track" not in rows  # the store has tracks of the front camera only
    view = load_view(store, 1)
    changes = 1 + int(np.count_nonzero(np.diff(view.control.astype(int))))
    assert rows["/events"] == changes  # one line per change of who is in control


def test_without_a_viewer_the_recording_is_saved_here(store, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert rl(["store", "view", str(store), "0", "--port", str(free_port())]) == 0
    assert rrd_rows(tmp_path / "demos-episode0.rrd")["/cameras/front"] == LENGTHS[0]


@pytest.mark.filterwarnings("ignore:RRD file has no footer")  # a viewer's --save stream
def test_an_open_viewer_gets_the_episode_streamed(store, tmp_path, capsys):
    """A headless rerun viewer process (rerun's own CLI, saving what it receives)."""
    port, saved = free_port(), tmp_path / "received.rrd"
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }  # its analytics: off, in a config of its own
    rerun = shutil.which("rerun", path=str(Path(sys.executable).parent))
    subprocess.run([rerun, "analytics", "disable"], env=env, capture_output=True, check=True)
    viewer = subprocess.Popen(
        [rerun, "--bind", "127.0.0.1", "--port", str(port), "--save", str(saved)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Ctrl-C must reach it even if something in this test process ignores SIGINT (an
        # ignored signal is inherited across exec: a shell's background job ignores it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        process_group=0,  # the `rerun` wrapper and the viewer it starts, killed together
    )
    try:
        deadline = time.monotonic() + 30
        while not viewer_is_open(port):
            assert time.monotonic() < deadline and viewer.poll() is None, "viewer did not start"
            time.sleep(0.1)
        assert rl(["store", "view", str(store), "1", "--port", str(port)]) == 0
        assert f"127.0.0.1:{port}" in capsys.readouterr().out
    finally:  # Ctrl-C: the viewer flushes what it saved and exits (slowly on a loaded CPU)
        viewer.send_signal(signal.SIGINT)
        try:
            viewer.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(viewer.pid, signal.SIGKILL)
            raise
    rows = rrd_rows(saved)
    assert rows["/cameras/front"] == rows["/cameras/front/track"] == LENGTHS[1]


def test_mp4_and_gif_strips_have_a_frame_per_step(store, tmp_path):
    mp4, gif = tmp_path / "e2.mp4", tmp_path / "e2.gif"
    assert rl(["store", "view", str(store), "2", "--out", str(mp4)]) == 0
    with av.open(str(mp4)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == LENGTHS[2]
    assert frames[0].shape[1] == 2 * SHAPE[1] and frames[0].shape[0] > SHAPE[0]  # 2 cameras
    assert rl(["store", "view", str(store), "2", "--out", str(gif)]) == 0
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == LENGTHS[2]


def test_tracks_are_drawn_where_the_points_are(store):
    view = load_view(store, 0)
    points, state = view.tracks["front"]
    frames = next(view.frames())
    strip = strip_frame(view, 0, frames).astype(int)
    for i, ((u, v), s) in enumerate(zip(points[0], state[0], strict=True)):
        if s == 0:
            continue
        u, v = int(round(u)), int(round(v))
        patch = strip[max(0, v - 2) : v + 3, max(0, u - 2) : u + 3]
        assert (np.abs(patch - TRACK_COLORS[i]).sum(axis=-1) < 60).any(), (i, u, v)


def test_bad_input_gets_a_clear_error(store, tmp_path, capsys):
    assert rl(["store", "view", str(store), "7", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no episode 7 (3 committed)" in capsys.readouterr().err
    assert rl(["store", "view", str(store), "0", "--out", str(tmp_path / "x.avi")]) == 2
    assert "use one of .rrd, .mp4, .gif" in capsys.readouterr().err
    assert rl(["store", "view", str(tmp_path / "nowhere.zarr"), "0"]) == 2
    assert "not a robot_learning store" in capsys.readouterr().err

    damaged = tmp_path / "damaged.zarr"
    recording_store(damaged)
    truncated = '{"zarr_format": 3, "node_type": "arr'
    (damaged / "meta" / "episode_ends" / "zarr.json").write_text(truncated)
    assert rl(["store", "view", str(damaged), "0", "--out", str(tmp_path / "d.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rl store view: error: ") and "episode_ends" in err
    recording_store(damaged2 := tmp_path / "damaged2.zarr")
    shards = sorted(
        p
        for p in (damaged2 / "data" / keys.camera_key("front")).rglob("*")
        if p.is_file() and p.name != "zarr.json"
    )
    shards[0].write_bytes(b"\0" * 64)
    assert rl(["store", "view", str(damaged2), "0", "--out", str(tmp_path / "d2.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rl store view: error: ") and keys.camera_key("front") in err
