"""Getting the store's bytes onto the disk: the Linux calls its crash safety rests on.

Writer and annotation flush the store's filesystem (``sync_filesystem``) before they write
the record that makes rows visible, so a power cut cannot commit rows that never reached
the disk. ``LIBC`` is the C library these calls (and rebuild's atomic ``renameat2``
exchange) go through, loaded once; None where it cannot be loaded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


LIBC = _load_libc()


def sync_filesystem(path: Path) -> None:
    """Flush the store's filesystem to disk (Linux syncfs), not every mounted filesystem."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if LIBC is None or not hasattr(LIBC, "syncfs") or LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
