"""The records that flow through the pipeline: a file's identity, its fingerprints, a match."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

MatchKind = Literal["exact", "near"]


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int
    dev: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)


@dataclass(frozen=True)
class Photo:
    """A file read, decoded once and fingerprinted: everything later stages need."""

    path: str
    stat: FileStat
    content_hash: bytes  # SHA-256 of the file's bytes: equal means an exact copy
    width: int
    height: int
    fingerprints: dict[str, bytes] = field(default_factory=dict)  # method key → Method.to_bytes()
    # Inputs prepared by workers for batched methods (the CNN), fingerprinted by `complete`.
    pending: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """`path` (newly indexed) duplicates `match` (indexed earlier). The public record of a duplicate."""

    path: str
    match: str
    kind: MatchKind
    method: str
    score: float
    distance: int  # Hamming distance of the candidate hashes; 0 for an exact copy
    transform: str | None = None  # "rotate-90", "mirror", ...: how `path` was turned from `match`
    geometry: dict[str, Any] | None = None  # inliers, rotation, scale, ... of a geometric match

    def to_json(self) -> dict[str, Any]:
        record = {
            "event": "duplicate",
            "path": self.path,
            "match": self.match,
            "kind": self.kind,
            "method": self.method,
            "score": round(self.score, 4),
            "distance": self.distance,
        }
        if self.transform is not None:
            record["transform"] = self.transform
        if self.geometry is not None:
            record["geometry"] = self.geometry
        return record
