"""The records that flow through the pipeline: a file's identity, its fingerprints, a match."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

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


class Header(NamedTuple):
    """What a file's header says: its format, which metadata it carries (`keeper.DATE`, ...),
    and with what camera and when it was taken (`shots.stamp`)."""

    format: str | None
    meta: int
    taken: str | None = None


@dataclass(frozen=True)
class Photo:
    """A file read, decoded once and fingerprinted: everything later stages need."""

    path: str
    stat: FileStat
    content_hash: bytes  # SHA-256 of the file's bytes: equal means an exact copy
    width: int
    height: int
    fingerprints: dict[str, bytes] = field(default_factory=dict)  # method key → Method.to_bytes()
    # Degrees (counter-clockwise as shown) the photo was turned on a canvas, undone before it
    # was fingerprinted (`canvas.py`); 0 for nearly every photo.
    turned: float = 0.0
    # Inputs prepared by workers for batched methods (the CNN), fingerprinted by `complete`.
    pending: dict[str, np.ndarray] = field(default_factory=dict)
    # Why the image is too small or too plain to be anyone's near-duplicate ("8×12 pixels"):
    # only its exact copies are looked for. None for every photo.
    exact_only: str | None = None
    # The photo's own pixels at the file's full size: its padding, canvas or an app's frame
    # around it left out (a copy padded to a square has more pixels than its original, not more
    # photo). 0: not known, width × height.
    pixels: int = 0
    # The file's format, which metadata it carries and when it was taken (`keeper.header_of`),
    # read by the worker that decoded it, from the bytes it had; None: to be read from the file
    # when it is indexed.
    header: Header | None = None

    @property
    def taken(self) -> str | None:
        """With what camera and when it was taken (`shots.stamp`), if its header says."""
        return None if self.header is None else self.header.taken


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
    # Degrees `path` is turned counter-clockwise from `match` on a canvas (black or white corners).
    turned: float | None = None
    group: int | None = None  # the group of copies of one photo both files belong to
    # The group's keeper, the copy to keep: `match` nearly always; `path` itself when the new file
    # is a better version of the photo than every copy before it.
    keep: str | None = None

    def better(self) -> bool:
        """The new file is the best copy of its group: a better version of `match`."""
        return self.keep == self.path

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
        if self.turned is not None:
            record["turned"] = self.turned
        if self.group is not None:
            record["group"] = self.group
        if self.keep is not None:
            record["keep"] = self.keep
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Match:
        return cls(record["path"], record["match"], record["kind"], record["method"], float(record["score"]),
                   int(record["distance"]), record.get("transform"), record.get("geometry"),
                   record.get("turned"), record.get("group"), record.get("keep"))


@dataclass(frozen=True)
class Notice:
    """A duplicate as the sinks get it: the duplicate record, when it was found, and its number.

    `id` grows with every notice and is never reused: the log, where a notice may be written
    twice after a kill, is read back with one line per id.
    """

    id: int
    found_at: float  # seconds since the epoch
    match: Match

    def to_json(self) -> dict[str, Any]:
        return {**self.match.to_json(), "found_at": self.found_at_text(), "id": self.id}

    def found_at_text(self) -> str:
        """ISO 8601 in UTC, to the millisecond: `2025-06-01T09:30:12.345Z`."""
        when = datetime.fromtimestamp(self.found_at, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Notice:
        when = datetime.fromisoformat(str(record["found_at"]).replace("Z", "+00:00"))
        return cls(int(record["id"]), when.timestamp(), Match.from_json(record))
