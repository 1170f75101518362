"""Store errors. Each message names the store path, and the episode/key/file when known."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class NotAStoreError(StoreError):
    """The path exists but is not a robot_learning demonstration store."""


class StoreCorruptError(StoreError):
    """Metadata or data that cannot be read; nothing has been modified."""


class StoreInputError(StoreError, ValueError):
    """A step, batch or episode that does not fit the schema (shape, dtype, NaN, missing key)."""


class StoreLockedError(StoreError):
    """Another live process holds the store's writer lock."""


class StoreFullError(StoreError):
    """The store's filesystem is full (or below the free-space margin). Committed episodes are
    intact; the message says what to do."""
