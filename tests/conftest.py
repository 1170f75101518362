"""Test-wide settings: offscreen MuJoCo rendering through EGL (Mesa on a CPU-only machine)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
