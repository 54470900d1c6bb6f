"""Every cached 64-bit hash in one numpy array: a query is one XOR and one popcount per row.

Measured (`benchmarks/hamming.py`): about 3 ms per query against 1,000,000 hashes on 2 cores.
A BK-tree or multi-index hashing would beat this only far past the libraries people keep at home,
and would cost memory and code that this does not.

The arrays can be saved to a file and loaded back with a stamp of the store's hashes: reading a
million rows out of SQLite one Python object at a time is most of a short command's time, and
reading the file back is one read.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

MAGIC = b"dupwatch hamming index 1\n"
# Rows within reach, as a multiple of those kept, past which they are not all sorted (`_nearest`).
WHOLE_SORT = 64


class HammingIndex:
    def __init__(self, capacity: int = 1024) -> None:
        self._hashes = np.zeros(capacity, dtype=np.uint64)
        self._ids = np.full(capacity, -1, dtype=np.int64)
        self._size = 0
        # file id → row, made when first needed: a query searches and never asks by id, and a
        # dict of a million ids costs more than the search.
        self._slot_of: dict[int, int] | None = {}

    @property
    def _slot(self) -> dict[int, int]:
        if self._slot_of is None:
            n = self._size
            live = np.flatnonzero(self._ids[:n] >= 0)
            self._slot_of = dict(zip(self._ids[live].tolist(), live.tolist(), strict=True))
        return self._slot_of

    def __len__(self) -> int:
        return len(self._slot)

    def add(self, file_id: int, value: int | np.integer) -> None:
        if file_id in self._slot:
            self._hashes[self._slot[file_id]] = np.uint64(value)
            return
        if self._size == len(self._hashes):
            self._grow(2 * len(self._hashes))
        self._hashes[self._size] = np.uint64(value)
        self._ids[self._size] = file_id
        self._slot[file_id] = self._size
        self._size += 1

    @classmethod
    def of(cls, file_ids: np.ndarray, values: np.ndarray) -> HammingIndex:
        """Build from the store's rows (each file id once) in one step."""
        n = len(file_ids)
        index = cls(max(1024, n))
        index._hashes[:n] = values
        index._ids[:n] = file_ids
        index._size = n
        index._slot_of = None
        return index

    def value(self, file_id: int) -> int | None:
        row = self._slot.get(file_id)
        return None if row is None else int(self._hashes[row])

    def remove(self, file_id: int) -> None:
        row = self._slot.pop(file_id, None)
        if row is not None:
            self._ids[row] = -1  # a tombstone: never returned, reused never (rows are cheap)

    def search(self, value: int | np.integer, max_distance: int,
               limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """File ids within `max_distance` bits of `value`, nearest first (ties in the order they
        were added), and their distances; only the first `limit` of them when it is given."""
        n = self._size
        distances = np.bitwise_count(self._hashes[:n] ^ np.uint64(value))
        near = distances <= max_distance
        if limit is not None and np.count_nonzero(near) > WHOLE_SORT * max(limit, 1):
            return self._nearest(distances, max_distance, limit)
        rows = np.flatnonzero(near)
        rows = rows[self._ids[rows] >= 0]  # a tombstone is never a candidate
        # Nearest first; ties stay in row order, which is the order they were added.
        rows = rows[np.argsort(distances[rows], kind="stable")][:limit]
        return self._ids[rows], distances[rows].astype(np.int64)

    def _nearest(self, distances: np.ndarray, max_distance: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """`search`'s answer when many more rows are within reach than it keeps (a query's wide
        net): the `limit` nearest without sorting them all, every row nearer than the limit-th
        one's distance, then the first rows at that distance, as a stable sort has them."""
        n = self._size
        distances[self._ids[:n] < 0] = 255  # a tombstone: past any distance asked for
        within = np.cumsum(np.bincount(distances, minlength=256)[: max_distance + 1])
        if within[-1] <= limit:
            rows = np.flatnonzero(distances <= max_distance)
        else:
            last = int(np.searchsorted(within, limit)) if limit > 0 else 0
            fewer = int(within[last - 1]) if last > 0 else 0
            at = np.flatnonzero(distances == last)[: max(0, limit - fewer)]
            rows = np.sort(np.concatenate([np.flatnonzero(distances < last), at]))
        rows = rows[np.argsort(distances[rows], kind="stable")]
        return self._ids[rows], distances[rows].astype(np.int64)

    def save(self, path: Path, stamp: bytes) -> None:
        """Write the index to `path` with `stamp` (the store's hashes it holds), replacing the
        file whole: a reader sees the old file or the new one, never half of one. A file that
        cannot be written is no harm: the index is read from the store next time too."""
        live = self._ids[: self._size] >= 0
        header = _head(stamp) + int(live.sum()).to_bytes(8, "big")
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        try:
            with open(part, "wb") as f:
                f.write(header)
                f.write(self._ids[: self._size][live].astype("<i8").tobytes())
                f.write(self._hashes[: self._size][live].astype("<u8").tobytes())
            os.replace(part, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(part)

    @staticmethod
    def saved_with(path: Path, stamp: bytes) -> bool:
        """Whether the index saved at `path` was saved with this `stamp` (its header only)."""
        head = _head(stamp)
        try:
            with open(path, "rb") as f:
                return f.read(len(head)) == head
        except OSError:
            return False

    @classmethod
    def load(cls, path: Path, stamp: bytes) -> HammingIndex | None:
        """The index saved at `path`, if it was saved with this `stamp`; else None."""
        head = _head(stamp)
        try:
            with open(path, "rb") as f:
                if f.read(len(head)) != head:
                    return None  # another stamp: the store's hashes changed since
                count = f.read(8)
                data = f.read()
        except OSError:
            return None
        n = int.from_bytes(count, "big")
        if len(count) != 8 or len(data) != 16 * n:
            return None  # cut short: a disk that filled up, a copy not finished
        ids = np.frombuffer(data, dtype="<i8", count=n)
        values = np.frombuffer(data, dtype="<u8", count=n, offset=8 * n)
        return cls.of(ids, values)

    def _grow(self, capacity: int) -> None:
        hashes = np.zeros(capacity, dtype=np.uint64)
        ids = np.full(capacity, -1, dtype=np.int64)
        hashes[: self._size] = self._hashes[: self._size]
        ids[: self._size] = self._ids[: self._size]
        self._hashes, self._ids = hashes, ids


def _head(stamp: bytes) -> bytes:
    return MAGIC + len(stamp).to_bytes(2, "big") + stamp
