"""The interface every store keeps: the embedded SQLite one, and later a shared PostgreSQL one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dupwatch.record import Match, Notice, Photo


@dataclass(frozen=True)
class Known:
    """What the store remembers of a path: enough to decide whether to read the file again."""

    id: int
    size: int
    mtime_ns: int
    plan: str  # the fingerprints it has (`Plan.signature`)


class Store(Protocol):
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

    def paths_of_inode(self, dev: int, ino: int) -> list[str]:
        """The cached paths of this file (device, inode): a move nobody saw is found by it."""

    def paths_under(self, root: str) -> Iterator[str]: ...

    def exact(self, content_hash: bytes, limit: int = 8) -> list[int]:
        """Ids of the oldest `limit` files with these exact bytes, oldest first."""

    def fingerprint(self, file_id: int, key: str) -> bytes | None: ...

    def put_fingerprint(self, file_id: int, key: str, data: bytes) -> None: ...

    def fingerprints(self, key: str) -> tuple[np.ndarray, list[bytes]]:
        """Every file id with a fingerprint of `key`, and those fingerprints."""

    def record_pair(self, file_id: int, match_id: int, match: Match) -> bool:
        """Remember a pair; False when it was known already (and so must not be reported again).
        A new pair's notice is written with it, in the same transaction."""

    # The notices outbox. Sinks deliver from their own connection (one per sink thread): what
    # they see is what has been committed, so nothing is told that a kill could take back.

    def notices(self, after: int, limit: int) -> list[Notice]:
        """Committed notices with an id above `after`, oldest first."""

    def position(self, sink: str) -> int:
        """The last notice id `sink` has delivered. A sink seen for the first time starts at the
        newest notice: a target added to the config is not sent the whole history."""

    def delivered(self, sink: str, notice_id: int) -> None:
        """`sink` has delivered every notice up to `notice_id` (committed at once)."""

    def pairs(self) -> Iterator[Match]: ...

    def count(self) -> int: ...

    def file_done(self) -> None:
        """The writes for one file (and its pair) are complete: a batch may be committed now."""

    def commit(self) -> None: ...

    def close(self) -> None: ...
