"""Every cached 64-bit hash in one numpy array: a query is one XOR and one popcount per row.

Measured (`benchmarks/hamming.py`): about 3 ms per query against 1,000,000 hashes on 2 cores.
A BK-tree or multi-index hashing would beat this only far past the libraries people keep at home,
and would cost memory and code that this does not.
"""

from __future__ import annotations

import numpy as np


class HammingIndex:
    def __init__(self, capacity: int = 1024) -> None:
        self._hashes = np.zeros(capacity, dtype=np.uint64)
        self._ids = np.full(capacity, -1, dtype=np.int64)
        self._size = 0
        self._slot: dict[int, int] = {}  # file id → row

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
        """Build from the store's rows in one step (a million rows in well under a second)."""
        n = len(file_ids)
        index = cls(max(1024, n))
        index._hashes[:n] = values
        index._ids[:n] = file_ids
        index._size = n
        index._slot = dict(zip(file_ids.tolist(), range(n), strict=True))
        return index

    def value(self, file_id: int) -> int | None:
        row = self._slot.get(file_id)
        return None if row is None else int(self._hashes[row])

    def remove(self, file_id: int) -> None:
        row = self._slot.pop(file_id, None)
        if row is not None:
            self._ids[row] = -1  # a tombstone: never returned, reused never (rows are cheap)

    def search(self, value: int | np.integer, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
        """File ids within `max_distance` bits of `value`, nearest first, and their distances."""
        n = self._size
        distances = np.bitwise_count(self._hashes[:n] ^ np.uint64(value))
        rows = np.flatnonzero((distances <= max_distance) & (self._ids[:n] >= 0))
        order = np.argsort(distances[rows], kind="stable")
        rows = rows[order]
        return self._ids[rows], distances[rows].astype(np.int64)

    def _grow(self, capacity: int) -> None:
        hashes = np.zeros(capacity, dtype=np.uint64)
        ids = np.full(capacity, -1, dtype=np.int64)
        hashes[: self._size] = self._hashes[: self._size]
        ids[: self._size] = self._ids[: self._size]
        self._hashes, self._ids = hashes, ids
