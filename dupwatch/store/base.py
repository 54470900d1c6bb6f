"""The interface every store keeps: the embedded SQLite one, and later a shared PostgreSQL one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

import numpy as np

from dupwatch.record import Header, Match, MatchKind, Notice, Photo


@dataclass(frozen=True)
class Known:
    """What the store remembers of a path: enough to decide whether to read the file again."""

    id: int
    size: int
    mtime_ns: int
    plan: str  # the fingerprints it has (`Plan.signature`)


@dataclass(frozen=True)
class Trouble:
    """A file that killed a decoding process, as it was then."""

    size: int
    mtime_ns: int
    reason: str


@dataclass(frozen=True)
class FileView:
    """A file of a notice as the review page shows it. `id` is None when the index no longer
    holds it with the content the notice was about (deleted, or changed since): then only the
    path the notice named is known."""

    id: int | None
    path: str
    size: int | None = None
    mtime_ns: int | None = None
    width: int | None = None
    height: int | None = None
    content_hash: bytes | None = None


@dataclass(frozen=True)
class Hashes:
    """The stored 64-bit hashes of one method: file ids ascending, and each one's hash."""

    ids: np.ndarray  # int64
    values: np.ndarray  # uint64
    stamp: bytes | None  # `Catalog.hash_stamp()` as these were read; None: not to be saved


def joined(pages: Iterable[tuple[np.ndarray, list[bytes]]]) -> tuple[np.ndarray, list[bytes]]:
    """`Catalog.fingerprint_pages` as one answer: `Catalog.fingerprints`."""
    ids, data = [], []
    for page_ids, page_data in pages:
        ids.append(page_ids)
        data.extend(page_data)
    return (np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)), data


class Member(NamedTuple):
    """A file of a group, with what the keeper order looks at. A tuple, not a dataclass: a
    listing of every group builds one per grouped file."""

    file_id: int
    path: str
    width: int
    height: int
    size: int
    mtime_ns: int
    format: str | None = None  # "JPEG", "PNG", "WEBP-LOSSLESS", "RAW", ...; None: not known
    meta: int = 0  # bits: capture date 1, camera 2, GPS 4 (`keeper.DATE`, ...)
    reference: bool = False  # under a `reference:` folder
    pixels: int = 0  # the photo's own pixels (`Photo.pixels`); 0: not known, width × height


@dataclass(frozen=True)
class Group:
    """The copies of one photo: its members, its keeper (the best copy, as last decided) and the
    copy the user chose to keep instead, if they did."""

    id: int
    keeper_id: int | None
    chosen_id: int | None
    members: list[Member]
    unread: list[int]  # members whose header (format, metadata) has not been read yet


Status = Literal["unreviewed", "seen", "not-duplicate", "all"]


@dataclass(frozen=True)
class ReviewFilter:
    status: Status = "unreviewed"  # unreviewed: neither seen nor "not a duplicate"
    folder: str | None = None  # either file under this folder (as the notice named it)
    method: str | None = None
    kind: MatchKind | None = None
    since: float | None = None  # found at or after (seconds since the epoch)
    until: float | None = None  # found before


@dataclass(frozen=True)
class Reviewed:
    """A notice with its two files as they are now, and what the user decided about it."""

    notice: Notice
    duplicate: FileView  # the notice's `path`: the file found to duplicate
    original: FileView  # its `match`: the file indexed before
    seen: bool
    not_duplicate: bool
    hashes: tuple[bytes, bytes] | None  # the two contents, as the notice found them


class Catalog(Protocol):
    """The files dupwatch knows, their fingerprints and the pairs found among them. One writer
    (the `Library`) changes it; anyone may read it."""

    def get(self, path: str) -> Known | None: ...

    def path_of(self, file_id: int) -> str | None: ...

    def put(self, photo: Photo, plan: str) -> int:
        """Insert or replace the file at `photo.path`; a replaced file keeps its id."""

    def remove(self, path: str) -> int | None:
        """Forget a path (and its pairs); returns the id it had."""

    def rename(self, old: str, new: str) -> int | None:
        """A file moved: `old` becomes `new`, keeping its id, fingerprints and pairs, so a moved
        file is neither read again nor reported again. None when `old` is unknown. `new` must not
        be known (remove it first)."""

    def trouble(self, path: str) -> Trouble | None:
        """What killed a decoding process at `path`, if a file there ever did."""

    def put_trouble(self, path: str, size: int, mtime_ns: int, reason: str) -> None:
        """Remember that the file at `path` (this size and mtime) killed a decoding process."""

    def paths_of_inode(self, dev: int, ino: int) -> list[str]:
        """The cached paths of this file (device, inode): a move nobody saw is found by it."""

    def paths_under(self, root: str) -> Iterator[str]: ...

    def exact(self, content_hash: bytes, limit: int = 8) -> list[int]:
        """Ids of the oldest `limit` files with these exact bytes, oldest first."""

    def fingerprint(self, file_id: int, key: str) -> bytes | None: ...

    def listen(self) -> None:
        """From now on, keep the ids of files that other connections index or forget, for
        `changed_elsewhere`. Called before the searches read the catalog, so that no file falls
        between the two."""

    def changed_elsewhere(self) -> list[int]:
        """Ids of the files (new, with new fingerprints, or forgotten) that other connections
        committed since the last call, as far as `listen` was called first; never waits."""

    def log_position(self) -> bytes | None:
        """Where the log of changed files stands now, for `changes_since`. None: no log is kept
        (an index saved beside the store is then never brought up to date, but made again)."""

    def changes_since(self, position: bytes) -> list[int] | None:
        """Ids of the files whose fingerprints any writer changed (or forgot) since `position`;
        None when the log no longer reaches back to it (another cache, or pruned since)."""

    def fingerprints_of(self, file_ids: Sequence[int], key: str) -> dict[int, tuple[str, bytes | None]]:
        """Each of these files still known: its path (as `path_of` names it) and its fingerprint
        of `key`, None when it has none yet. One read for all: a search's candidates are scored
        together, and to a database server every read is a round trip."""

    def put_fingerprint(self, file_id: int, key: str, data: bytes) -> None: ...

    def fingerprints(self, key: str) -> tuple[np.ndarray, list[bytes]]:
        """Every file id with a fingerprint of `key`, and those fingerprints."""

    def fingerprint_pages(self, key: str, rows: int = ...) -> Iterator[tuple[np.ndarray, list[bytes]]]:
        """The same, `rows` at a time in the order of the ids: a million embeddings (2.5 GB)
        never all in memory at once."""

    def hashes(self, key: str) -> Hashes:
        """Every file id with a 64-bit hash of `key` and those hashes, as two arrays in one
        read (no object per row), with the stamp they were read at."""

    def hash_stamp(self) -> bytes | None:
        """What the stored hashes are now: it changes whenever any hash does, so an index of
        them saved with it is current while it is unchanged. None: this store keeps none."""

    def record_pair(self, file_id: int, match_id: int, match: Match, tell: bool = True) -> bool:
        """Remember a pair; True when it is new and to be told: its notice is written with it, in
        the same transaction. Without `tell`, no notice. False when the pair was known already, or
        a notice about these two contents was written before (at other paths, before a file was
        forgotten and found again): a pair is told once."""

    def group_of(self, file_id: int) -> int | None: ...

    def group(self, group_id: int) -> Group | None: ...

    def keeper_of(self, file_id: int) -> int | None:
        """The keeper of the file's group, in one read (the hot path asks it of every candidate);
        None when the file is in no group."""

    def groups(self) -> list[int]:
        """Every group's id, oldest first."""

    def all_groups(self) -> Iterator[Group]:
        """Every group with its members, oldest first, in one read."""

    def save_group(self, group_id: int | None, member_ids: Sequence[int], keeper_id: int | None,
                   chosen_id: int | None) -> int:
        """Make a group (None) or change one: exactly these members, this keeper and choice."""

    def drop_group(self, group_id: int) -> None:
        """A group of fewer than two files is no group: its last member leaves it."""

    def put_header(self, file_id: int, header: Header) -> None:
        """What a file's header says: its format and metadata (`Member`), and when it was taken."""

    def taken(self, file_id: int) -> str | None:
        """With what camera and when the file was taken (`shots.stamp`); None when not known."""

    def pairs(self) -> Iterator[Match]: ...

    def content_hash(self, file_id: int) -> bytes | None: ...

    def content_hashes(self) -> set[bytes]:
        """The contents of every indexed file."""

    def count(self) -> int: ...

    def turned(self, file_id: int) -> float:
        """Degrees an indexed file was turned on a canvas (`Photo.turned`)."""

    def beside(self, name: str) -> Path | None:
        """Where an index rebuilt from this store may be kept between runs (None: nowhere)."""

    def file_done(self) -> None:
        """The writes for one file (and its pair) are complete: a batch may be committed now."""

    def commit(self) -> None: ...

    def close(self) -> None: ...


class Outbox(Protocol):
    """The notices, in the order they were found, and how far each sink has delivered them.
    Sinks deliver from their own connection (one per sink thread): what they see is what has been
    committed, so nothing is told that a kill could take back."""

    def notices(self, after: int, limit: int) -> list[Notice]:
        """Committed notices with an id above `after`, oldest first."""

    def position(self, sink: str) -> int:
        """The last notice id `sink` has delivered. A sink seen for the first time starts at the
        newest notice: a target added to the config is not sent the whole history."""

    def delivered(self, sink: str, notice_id: int) -> None:
        """`sink` has delivered every notice up to `notice_id` (committed at once)."""

    def take_delivery(self) -> str | None:
        """Become the one process that delivers this cache's notices (of every host sharing it),
        until this connection closes, however the process ends; None when it did, else who holds
        that role now, in words for a log line. Never waits."""

    def close(self) -> None: ...


class Decisions(Protocol):
    """What the user decided: pairs that are not duplicates, notices seen. Committed at once,
    whatever batch the connection is in."""

    def not_duplicates(self, content_hash: bytes) -> set[bytes]:
        """The contents the user said are not duplicates of this one."""

    def set_not_duplicate(self, a: bytes, b: bytes, decided: bool) -> bool:
        """Decide (or undo) that contents `a` and `b` are not duplicates; True if that changed."""

    def set_seen(self, notice_id: int, seen: bool) -> bool:
        """Mark a notice seen (or not); False when there is no such notice."""


class Review(Protocol):
    """What the review page and `dupwatch notices` read: notices with their files as they are now."""

    def review(self, which: ReviewFilter, offset: int, limit: int) -> tuple[list[Reviewed], int]:
        """Notices newest first as the filter selects them, one page, and how many it selects."""

    def reviewed(self, notice_id: int) -> Reviewed | None: ...

    def latest_notice(self, a: bytes, b: bytes) -> Reviewed | None:
        """The newest notice about contents `a` and `b`, in either order."""

    def file_view(self, file_id: int) -> FileView | None:
        """An indexed file by id: the only way the review page finds a file to show."""

    def reviewed_ids(self) -> set[int]:
        """The notices seen or marked "not a duplicate"."""

    def notice_methods(self) -> list[str]:
        """The methods that notices name, for the page's filter."""


class Store(Catalog, Outbox, Decisions, Review, Protocol):
    """Every role of one cache, as `open_store` gives it (one connection: a process may hold
    several, one per thread). Code that needs one role takes that role."""
