"""Test-wide settings: offscreen MuJoCo rendering through EGL (Mesa on a CPU-only machine);
fixtures more than one test package uses."""

import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


@pytest.fixture
def small_disk(tmp_path):
    """Mount small tmpfs filesystems (root only; skips otherwise): ENOSPC from the kernel."""

    def mount(size_mb: float) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        path = tmp_path / f"disk{len(mounted)}"
        path.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={int(size_mb * 1024)}k", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(path)
        return path

    mounted: list[Path] = []
    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)
