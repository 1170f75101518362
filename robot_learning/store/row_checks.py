"""Checking rows before the store takes them: keys, shapes, dtypes and finite values.

A bad row is refused where it is appended (StoreInputError naming the episode, stream and
key), never found later by a reader. Writer and annotation share these checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from robot_learning.store.errors import StoreInputError
from robot_learning.store.schema import KeySpec, StoreSchema


def check_rows(
    schema: StoreSchema,
    rows: Mapping[str, Any],
    stream: str,
    *,
    expected_keys: frozenset[str] | None,
    where: str,
    allow_nonfinite: bool,
) -> dict[str, np.ndarray]:
    """A batch of rows for ``stream`` checked and copied: every key in the stream's schema,
    the same keys as the episode's first step (``expected_keys``), the same row count.

    When the keys are the first step's, stream and key names were checked then: only the
    values are (the cheap path a 100 Hz state stream takes at every row)."""
    keys = frozenset(rows)
    if expected_keys is None or keys != expected_keys:
        _check_keys(schema, rows, stream, keys, expected_keys, where)
    checked, lengths = {}, set()
    for key, value in rows.items():
        spec = schema.keys[key]
        checked[key] = check_value(value, spec, where, allow_nonfinite, key=key)
        lengths.add(len(checked[key]))
    if len(lengths) != 1:
        raise StoreInputError(
            f"{where}, stream {stream!r}: keys have different row counts "
            f"{ {k: len(v) for k, v in checked.items()} }"
        )
    return checked


def _check_keys(
    schema: StoreSchema,
    rows: Mapping[str, Any],
    stream: str,
    keys: frozenset[str],
    expected_keys: frozenset[str] | None,
    where: str,
) -> None:
    if stream not in schema.streams:
        raise StoreInputError(
            f"{where}: unknown stream {stream!r} (streams: {', '.join(schema.streams)})"
        )
    if not rows:
        raise StoreInputError(f"{where}: empty step for stream {stream!r}")
    for key in rows:
        spec = schema.keys.get(key)
        if spec is None or spec.stream != stream:
            known = ", ".join(schema.keys_of(stream))
            raise StoreInputError(
                f"{where}: key {key!r} is not in stream {stream!r} of the schema (keys: {known})"
            )
    if expected_keys is not None and keys != expected_keys:
        missing, extra = sorted(expected_keys - keys), sorted(keys - expected_keys)
        raise StoreInputError(
            f"{where}, stream {stream!r}: keys differ from the episode's "
            f"first step (missing {missing}, unexpected {extra})"
        )


def check_value(
    value: Any, spec: KeySpec, where: str, allow_nonfinite: bool, *, key: str | None = None
) -> np.ndarray:
    """Rows of one key, shaped (n, *spec.shape), as a C-ordered copy in the key's dtype.
    Errors name ``where`` and, when given, ``key``."""
    array = np.asarray(value)
    if array.shape[1:] != spec.shape:
        raise StoreInputError(
            f"{_at(where, key)}: expected rows of shape {spec.shape}, got "
            f"{array.shape[1:]} (batch shape {array.shape})"
        )
    target = spec.numpy_dtype
    if array.dtype != target and (
        array.dtype == object or not np.can_cast(array.dtype, target, casting="same_kind")
    ):
        raise StoreInputError(
            f"{_at(where, key)}: expected dtype {target}, got {array.dtype} (no safe conversion)"
        )
    # A copy the writer owns: camera drivers recycle their frame buffers, and rows wait in
    # memory until they are flushed.
    array = np.array(array, dtype=target, order="C", copy=True)
    if spec.is_float and not allow_nonfinite and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array.reshape(len(array), -1)))[0]
        raise StoreInputError(
            f"{_at(where, key)}: non-finite value (NaN/inf) in row {int(bad[0])} of this "
            "batch; pass allow_nonfinite=True to store it anyway"
        )
    return array


def _at(where: str, key: str | None) -> str:
    return where if key is None else f"{where}, key {key!r}"
