"""Store errors. Each message names the store path, and the episode/key/file when known.

Exit status through ``rl`` (robot_learning.errors): a store that is missing, not a store,
damaged or fed bad data is bad input (2); a lock held by another writer is a failure (1);
a full disk is 3.
"""

from __future__ import annotations

from robot_learning.errors import ExitCode, RobotLearningError


class StoreError(RobotLearningError):
    """Base class of every store error."""

    exit_code = ExitCode.BAD_INPUT


class NotAStoreError(StoreError):
    """The path exists but is not a robot_learning demonstration store."""


class StoreCorruptError(StoreError):
    """Metadata or data that cannot be read; nothing has been modified."""


class StoreInputError(StoreError, ValueError):
    """A step, batch or episode that does not fit the schema (shape, dtype, NaN, missing key)."""


class StoreLockedError(StoreError):
    """Another live process holds the store's writer lock."""

    exit_code = ExitCode.FAILURE


class StoreFullError(StoreError):
    """The store's filesystem is full (or below the free-space margin). Committed episodes are
    intact; the message says what to do."""

    exit_code = ExitCode.DISK_FULL
