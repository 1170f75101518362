"""Declared schema of a demonstration store: every key's shape, dtype, codec, units and frame.

The schema is written into the root group's attributes when a store is created and checked on
every append, so a recorder with a wrong camera resolution fails at the first frame, naming
the key, instead of producing a store that training later trips over.

Glossary: a *step* is one row of the main stream (``step``), the rate training samples at;
other *streams* (say ``state`` at 100 Hz next to 30 Hz cameras) keep their own rows and
their own per-episode ends. ``T`` is the number of rows of a stream in one episode.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from robot_learning.errors import InputError

SCHEMA_VERSION = 2  # 2: image arrays may be sharded (version 1 software would misread them)
READABLE_SCHEMA_VERSIONS = (1, 2)  # 1: every image frame its own file
MAIN_STREAM = "step"


class Source(enum.StrEnum):
    """Where an episode came from; training selects by it."""

    TELEOP = "teleop"
    HUMAN_VIDEO = "human_video"
    POLICY = "policy"
    INTERVENTION = "intervention"


class Codec(enum.StrEnum):
    """How a key's rows are compressed. Images are one chunk per frame."""

    JPEG = "jpeg"  # lossy, color/gray uint8 images; fast enough for live multi-camera capture
    JPEGXL = "jpegxl"  # lossy (or lossless at quality 100), ~2x smaller, ~10x slower: archival
    DEPTH = "depth"  # lossless: blosc zstd with bit-shuffle, uint16 depth in mm
    RAW_IMAGE = "raw_image"  # uncompressed frames (masks, already-compressed data)
    LOWDIM = "lowdim"  # lossless zstd, rows chunked together (states, actions, timestamps)


IMAGE_CODECS = frozenset({Codec.JPEG, Codec.JPEGXL, Codec.DEPTH, Codec.RAW_IMAGE})


class SchemaError(InputError):
    """A schema that cannot describe a store (bad key name, shape, dtype or codec)."""


@dataclass(frozen=True)
class KeySpec:
    """One stored key. ``shape`` is the per-row shape (without the leading time axis)."""

    shape: tuple[int, ...]
    dtype: str
    codec: Codec = Codec.LOWDIM
    stream: str = MAIN_STREAM
    quality: int = 90  # JPEG / JPEG-XL quality (100 = lossless for JPEG-XL)
    units: str = ""  # "m", "rad", "mm", "s since epoch", "" when unitless
    frame: str = ""  # coordinate frame for poses/points, camera optical frame for images
    description: str = ""
    chunk_rows: int = 0  # rows per chunk; 0 = default (1 for images, 4096 for lowdim)
    effort: int = 1  # JPEG-XL encoder effort 1..9: 1 for live recording, more for archives

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "codec", Codec(self.codec))
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as exc:
            raise SchemaError(f"unknown dtype {self.dtype!r}") from exc
        object.__setattr__(self, "dtype", dtype.name)
        if any(s <= 0 for s in self.shape):
            raise SchemaError(f"shape {self.shape} has a non-positive dimension")
        if self.codec in (Codec.JPEG, Codec.JPEGXL):
            if dtype != np.uint8 or len(self.shape) not in (2, 3):
                raise SchemaError(
                    f"codec {self.codec} needs uint8 (H, W) or (H, W, C) rows, "
                    f"got {self.dtype} {self.shape}"
                )
            if len(self.shape) == 3 and self.shape[2] not in (1, 3):
                raise SchemaError(f"codec {self.codec} needs 1 or 3 channels, got {self.shape}")
            if not 1 <= self.quality <= 100:
                raise SchemaError(f"quality must be 1..100, got {self.quality}")
        if self.codec == Codec.DEPTH and (dtype != np.uint16 or len(self.shape) != 2):
            raise SchemaError(
                f"codec depth needs uint16 (H, W) rows, got {self.dtype} {self.shape}"
            )
        if not 1 <= self.effort <= 9:
            raise SchemaError(f"effort must be 1..9, got {self.effort}")
        if self.chunk_rows < 0:
            raise SchemaError(f"chunk_rows must be >= 0, got {self.chunk_rows}")

    @property
    def is_image(self) -> bool:
        return self.codec in IMAGE_CODECS

    @property
    def rows_per_chunk(self) -> int:
        if self.chunk_rows:
            return self.chunk_rows
        if self.is_image:
            return 1
        # ~64 KiB..1 MiB chunks for typical state/action rows: few files, cheap appends.
        row_bytes = int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize
        return int(min(4096, max(64, (1 << 20) // max(row_bytes, 1))))

    @functools.cached_property  # asked at every appended row, as is numpy_dtype
    def is_float(self) -> bool:
        return np.issubdtype(self.numpy_dtype, np.floating)

    @functools.cached_property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["codec"] = str(self.codec)
        data["shape"] = list(self.shape)
        if self.effort == 1:  # absent as before it existed: fingerprints stay as they were
            del data["effort"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeySpec:
        return cls(**{**data, "shape": tuple(data["shape"])})


@dataclass(frozen=True)
class StoreSchema:
    """All keys of a store. Key names are unique across streams."""

    keys: dict[str, KeySpec]
    stream_rates_hz: dict[str, float] = field(default_factory=dict)  # nominal, informative

    def __post_init__(self) -> None:
        if not self.keys:
            raise SchemaError("a schema needs at least one key")
        for name in self.keys:
            if not name or "/" in name or name.startswith((".", "_")) or name != name.strip():
                raise SchemaError(
                    f"key name {name!r} must be non-empty, without '/', '.' or '_' "
                    "at the start, or surrounding spaces"
                )
        streams = {spec.stream for spec in self.keys.values()}
        if MAIN_STREAM not in streams:
            raise SchemaError(f"at least one key must be in the main stream {MAIN_STREAM!r}")
        for stream in streams:
            if not stream.isidentifier():
                raise SchemaError(f"stream name {stream!r} must be an identifier")

    @property
    def streams(self) -> list[str]:
        """Stream names, the main stream first."""
        others = sorted({s.stream for s in self.keys.values()} - {MAIN_STREAM})
        return [MAIN_STREAM, *others]

    def keys_of(self, stream: str) -> list[str]:
        return [k for k, s in self.keys.items() if s.stream == stream]

    def to_json(self) -> dict[str, Any]:
        return {
            "keys": {k: v.to_json() for k, v in self.keys.items()},
            "stream_rates_hz": dict(self.stream_rates_hz),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoreSchema:
        return cls(
            keys={k: KeySpec.from_json(v) for k, v in data["keys"].items()},
            stream_rates_hz=dict(data.get("stream_rates_hz", {})),
        )

    def compatible_with(self, other: StoreSchema) -> list[str]:
        """Differences that forbid appending with ``other`` to a store declared as ``self``."""
        problems = []
        for key, spec in other.keys.items():
            mine = self.keys.get(key)
            if mine is None:
                problems.append(f"key {key!r} is not in the store's schema")
            elif (mine.shape, mine.dtype, mine.stream) != (spec.shape, spec.dtype, spec.stream):
                problems.append(
                    f"key {key!r}: store has {mine.dtype} {mine.shape} in stream {mine.stream!r}, "
                    f"writer declares {spec.dtype} {spec.shape} in stream {spec.stream!r}"
                )
        return problems
