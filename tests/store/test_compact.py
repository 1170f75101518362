"""`rl store compact`: color frames re-encoded denser, everything else exactly as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import zarr

from robot_learning.store import Codec, StoreReader, StoreWriter
from robot_learning.store.frame_files import frame_codecs
from robot_learning.store.validate import validate
from tests.store import helpers

ROOT = Path(__file__).resolve().parents[2]


def test_compact_re_encodes_color_frames_and_reports_bytes_and_psnr(tmp_path):
    path = tmp_path / "s.zarr"
    with StoreWriter(path, helpers.schema()) as writer:
        for seed in range(3):
            writer.begin_episode(source="teleop", task="lift")
            writer.append_batch(helpers.episode(seed, 12))
            writer.commit(success=True)
    before = StoreReader(path)
    old = {e: before.read_episode(e) for e in range(3)}
    color_bytes = sum(p.stat().st_size for p in (path / "data/camera_front").rglob("*"))

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot_learning.cli",
            "store",
            "compact",
            str(path),
            "--quality",
            "85",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert "compact done, 3 episodes" in result.stdout and "camera_front" in result.stdout
    reported_db = float(result.stdout.split("camera_front ")[1].split(" dB")[0])

    after = StoreReader(path)
    assert validate(path) == []  # lossless keys still match the checksums taken at commit
    spec = after.spec("camera_front")
    assert (spec.codec, spec.quality, spec.effort) == (Codec.JPEGXL, 85, 5)
    codec = frame_codecs(zarr.open_array(path / "data/camera_front", mode="r"))[0]
    assert codec.to_dict() == {
        "name": "robot_learning.jpegxl",
        "configuration": {"quality": 85, "effort": 5},
    }
    assert sum(p.stat().st_size for p in (path / "data/camera_front").rglob("*")) < color_bytes
    new = np.concatenate([after.read_episode(e)["camera_front"] for e in range(3)])
    previous = np.concatenate([old[e]["camera_front"] for e in range(3)])
    per_frame_mse = np.mean((new.astype(float) - previous) ** 2, axis=(1, 2, 3))
    assert abs(10 * np.log10(255.0**2 / per_frame_mse.mean()) - reported_db) < 0.05
    assert reported_db > 30  # tiny 48x64 test frames with hard edges; see archive_codecs
    for e in range(3):
        got = after.read_episode(e)
        assert helpers.lossless_digest(got) == helpers.lossless_digest(old[e])
        assert after.episode(e).info == before.episode(e).info
