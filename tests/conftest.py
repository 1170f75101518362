"""Test-wide settings: offscreen rendering and loopback-only DDS for every test process."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
