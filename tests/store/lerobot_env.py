"""A side environment with LeRobot 0.4.4's dataset loader, built once and cached, so tests
can check our LeRobotDataset exports with LeRobot's own code.

Not a project dependency: LeRobot pins an older torch (0.4.4: torch<2.11; 0.6 needs Python
3.12), so it cannot live in the project's venv. Facts behind the build (checked here):
- lerobot 0.4.4 goes in with --no-deps beside the project's CPU torch, with only the
  requirements its ``lerobot.datasets`` package imports (its bounds kept);
- ``lerobot.datasets.utils`` imports torchvision; PyPI's torchvision 0.28.0 links CUDA
  libraries the CPU torch lacks, so its op registrations fail at import: they are skipped
  when the C extension did not load (the patch below); the pure-Python parts work;
- LeRobot cannot decode its own videos beside CPU torch 2.13 (torchvision 0.28 has no
  VideoReader; torchcodec 0.10 fails on a c10 symbol, 0.17 links CUDA), so the check
  script decodes frames with PyAV where LeRobot would call its decoder.
Cached under ``$RL_LEROBOT_VENV`` or ``$XDG_CACHE_HOME/robot_learning/`` (default
``~/.cache``); a stamp file marks a finished build, a lock serializes concurrent builds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

LEROBOT = "lerobot==0.4.4"
TORCHVISION = "torchvision==0.28.0"  # the release paired with torch 2.13
# Requirements of lerobot 0.4.4 that lerobot.datasets imports (versions bounded by its metadata)
NEEDED = ("datasets", "huggingface-hub", "accelerate", "av", "packaging", "jsonlines")
EXTRA = ("pillow",)  # imported by lerobot.datasets, pulled in by other requirements upstream
STAMP = ".robot_learning-ok"


class RegistryUnreachable(RuntimeError):
    """pip could not reach the package index: the side environment cannot be built here."""


def venv_dir() -> Path:
    explicit = os.environ.get("RL_LEROBOT_VENV")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    torch_version = torch.__version__.split("+")[0]
    return cache / "robot_learning" / f"lerobot-0.4.4-torch{torch_version}"


def is_cached() -> bool:
    return (venv_dir() / STAMP).exists()


def side_python() -> tuple[Path, float]:
    """The side venv's python, building it first when needed; (path, build seconds or 0)."""
    target = venv_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / STAMP).exists():
            return target / "bin" / "python", 0.0
        started = time.perf_counter()
        _check_registry()
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        _build(partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        # a venv's scripts name its directory; the interpreter itself does not care
        (target / STAMP).write_text(f"{LEROBOT} {TORCHVISION} torch {torch.__version__}\n")
        return target / "bin" / "python", time.perf_counter() - started


# What pip prints when it cannot reach the index (or the index lacks what we ask for).
UNREACHABLE = (
    "No matching distribution found",
    "Could not find a version",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
    "Max retries exceeded",
)


def _check_registry() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, LEROBOT],
            capture_output=True,
            text=True,
            timeout=300,
        )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RegistryUnreachable(f"pip download {LEROBOT} failed: {last}")


def _pip(python: Path, *args: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode == 0:
        return
    what = f"pip install {' '.join(args)} failed"
    if any(sign in result.stderr for sign in UNREACHABLE):
        raise RegistryUnreachable(f"{what}: {result.stderr.strip().splitlines()[-1]}")
    raise RuntimeError(f"{what}:\n{result.stderr[-3000:]}")


def _build(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
    python = root / "bin" / "python"
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    _pip(python, torch_pin)  # first and alone, as the project's Makefile does
    _pip(python, "--no-deps", LEROBOT)
    requirements = subprocess.run(
        [str(python), "-c", _REQUIREMENTS, *NEEDED], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    constraints = root / "constraints.txt"
    constraints.write_text(torch_pin + "\n")
    _pip(python, "-c", str(constraints), *[r for r in requirements if r], *EXTRA)
    _pip(python, "--no-deps", TORCHVISION)
    subprocess.run([str(python), "-c", _PATCH_TORCHVISION], check=True, timeout=120)
    subprocess.run(
        [str(python), "-c", "import lerobot.datasets.lerobot_dataset"],
        check=True,
        timeout=300,
        capture_output=True,
    )


_REQUIREMENTS = """
import sys, importlib.metadata as m, re
wanted = set(sys.argv[1:])
for r in m.requires("lerobot"):
    spec = r.split(";")[0].strip()
    name = re.split(r"[<>=!\\[ ]", spec, maxsplit=1)[0]
    if "extra ==" not in r and name in wanted:
        print(re.sub(r"\\[.*?\\]", "", spec))
"""

_PATCH_TORCHVISION = """
import importlib.util
path = importlib.util.find_spec("torchvision").origin
text = open(path).read()
old = "from torchvision import (\\n    _autograd_registrations,\\n    _meta_registrations,"
if "PATCHED" not in text:
    if old not in text:
        raise SystemExit(f"{path}: unexpected torchvision source; cannot patch")
    text = text.replace(old, "from torchvision import (")
    text = text.replace("\\ntry:\\n", "\\n# PATCHED: op registrations need the C extension.\\n"
        "from torchvision import extension as _ext\\nif _ext._has_ops():\\n"
        "    from torchvision import _autograd_registrations, _meta_registrations  # noqa\\n"
        "\\ntry:\\n", 1)
    open(path, "w").write(text)
"""
