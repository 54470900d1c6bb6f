"""The k nearest CNN embeddings (unit vectors, so cosine = dot product) for robust mode.

Two indexes behind one protocol, chosen by `make_vector_index`:

- `NumpyVectors`: exact brute force over float16 rows, scored in float32 a slice at a time.
- `UsearchVectors`: a usearch HNSW graph over float16 vectors, for libraries too big to scan on
  every query. usearch is optional and imported only when this index is built.

Figures are from `benchmarks/vectors.py` on the reference machine (2 cores, AVX-512).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from functools import cache
from pathlib import Path
from typing import Literal, Protocol, Self, cast

import numpy as np

from dupwatch.extras import install

log = logging.getLogger("dupwatch")

# Up to this many rows `auto` scans with numpy; above it, usearch. An exact numpy query grows
# with the rows and passes the 50 ms target about here (`benchmarks/vectors.py`; figures:
# docs/benchmarks.md, "CNN and robust mode"); usearch answers faster, but only after building its
# graph, where numpy takes the store's rows as they are. So numpy up to that target, and nothing
# to build before it.
NUMPY_MAX_ROWS = 50_000

_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


class VectorIndex(Protocol):
    """File ids → unit vectors. One writer at a time; searches may run while nothing is written."""

    @classmethod
    def of(cls, file_ids: np.ndarray, vectors: np.ndarray) -> Self:
        """Build from the store's rows at start-up: int64 ids and an (n, dim) float16 array."""
        ...

    def __len__(self) -> int: ...

    def add(self, file_id: int, vector: np.ndarray) -> None:
        """Index a vector; a file id already indexed has its vector replaced."""
        ...

    def remove(self, file_id: int) -> None:
        """Forget a file id (no error if it is not indexed)."""
        ...

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest file ids (int64) and their cosine similarities (float32), best first."""
        ...


# float16 → float32 without numpy's half-float cast, which converts one value at a time
# (about 2 ns a value here, 200–350 ms a query at 100,000 rows). Sign-extend the 16 bits to 32,
# shift left by 13 and clear the three copies of the sign above the exponent: that is the same
# number as a float32 scaled by 2^-112 (the difference of the exponent biases, 127 - 15), exactly,
# subnormal halves included. The query is scaled by 2^112 instead, so the dot product comes out
# unscaled and equal to casting the rows. Three integer passes cost less than half the cast.
_SIGN_AND_BODY = np.int32(np.uint32(0x8FFF_FFFF).view(np.int32))
_UNBIAS = np.float32(2.0**112)
# Rows scored per pass: 256 × 1280 int32 is 1.25 MiB, which stays in the L2 cache between the
# conversion passes and the product (16,384-row slices ran 4× slower, out of cache).
_CHUNK_ROWS = 256


class NumpyVectors:
    """Every vector in one float16 array: exact, and free to build from the store's rows."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self.dim = dim
        # np.zeros takes fresh zeroed pages from the OS: capacity not yet written costs no memory
        # (measured: 1.5 MiB of RSS for an empty index of 200,000 rows).
        self._rows = np.zeros((max(1, capacity), dim), dtype=np.float16)
        self._ids = np.full(max(1, capacity), -1, dtype=np.int64)
        self._size = 0
        self._slot: dict[int, int] = {}  # file id → row

    def __len__(self) -> int:
        return len(self._slot)

    @classmethod
    def of(cls, file_ids: np.ndarray, vectors: np.ndarray) -> Self:
        n, dim = vectors.shape
        _check_finite(vectors)
        ids = _ids(file_ids)
        index = cls(dim, max(1024, n))
        index._rows[:n] = vectors
        index._ids[:n] = ids
        index._size = n
        index._slot = dict(zip(ids.tolist(), range(n), strict=True))
        return index

    def add(self, file_id: int, vector: np.ndarray) -> None:
        row = _as_row(vector, self.dim).astype(np.float16)
        _check_finite(row)
        _ids(np.array([file_id]))  # refuses a negative id
        if file_id in self._slot:
            self._rows[self._slot[file_id]] = row
            return
        if self._size == len(self._ids):
            self._resize(2 * len(self._ids))
        self._rows[self._size] = row
        self._ids[self._size] = file_id
        self._slot[file_id] = self._size
        self._size += 1

    def remove(self, file_id: int) -> None:
        row = self._slot.pop(file_id, None)
        if row is None:
            return
        self._ids[row] = -1  # a tombstone: never returned
        # Dead rows still cost scan time, so once they outnumber the live ones, drop them all.
        if self._size - len(self._slot) > max(len(self._slot), 1024):
            self._compact()

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n, live = self._size, len(self._slot)
        k = min(k, live)
        if k <= 0:
            return _EMPTY[0].copy(), _EMPTY[1].copy()
        q = _as_row(query, self.dim).astype(np.float32) * _UNBIAS
        halves = self._rows[:n].view(np.int16)
        scores = np.empty(n, dtype=np.float32)
        bits = np.empty((min(_CHUNK_ROWS, n), self.dim), dtype=np.int32)
        for start in range(0, n, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, n)
            chunk = bits[: stop - start]
            np.left_shift(halves[start:stop], 13, out=chunk, dtype=np.int32)
            np.bitwise_and(chunk, _SIGN_AND_BODY, out=chunk)
            np.matmul(chunk.view(np.float32), q, out=scores[start:stop])
        if live < n:
            scores[self._ids[:n] < 0] = -np.inf
        top = np.argpartition(scores, n - k)[n - k:] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return self._ids[top], scores[top]

    def _resize(self, capacity: int) -> None:
        rows = np.zeros((capacity, self.dim), dtype=np.float16)
        ids = np.full(capacity, -1, dtype=np.int64)
        rows[: self._size] = self._rows[: self._size]
        ids[: self._size] = self._ids[: self._size]
        self._rows, self._ids = rows, ids

    def _compact(self) -> None:
        keep = np.flatnonzero(self._ids[: self._size] >= 0)
        n = len(keep)
        self._rows[:n] = self._rows[keep]
        self._ids[:n] = self._ids[keep]
        self._ids[n: self._size] = -1
        self._size = n
        self._slot = dict(zip(self._ids[:n].tolist(), range(n), strict=True))


class UsearchVectors:
    """An HNSW graph (usearch) over float16 vectors: approximate, 16 ms a query at 100,000 rows.

    Its cost is the build, about 0.6 ms a row on both cores (59 s for 100,000), paid again at
    every start unless the graph is saved. float16 rather than int8: usearch casts to int8 by
    multiplying by 127, which leaves a unit 1280-d vector (values near 0.03) a few levels a value.
    Even searching exhaustively, int8 kept 0.87 of the true top 5 on embedding-like vectors and
    0.72 on isotropic ones; float16 kept 1.00, for 2.5 KiB a vector instead of 1.25.
    """

    # "Embedding-like": drawn from a Gaussian fitted to 1,248 EfficientNet-Lite0 embeddings of the
    # shared photos and crops of them, clipped at 0. At 100,000 of them, the share of the exact
    # top 5 found with a search breadth of 256 was 0.95, of 512 0.98, of 1024 0.996 (14 ms a
    # query). Adding with a breadth of 64 rather than usearch's 128 cut the build from 107 s to
    # 65 s for 0.002 of that recall; 32 links a node rather than 16 doubled the build.
    CONNECTIVITY = 16
    EXPANSION_ADD = 64
    EXPANSION_SEARCH = 1024

    # A saved graph is brought up to date rather than rebuilt while at most this share of it
    # changed: past that, a fresh build costs little more and leaves a better graph.
    RESTORE_MAX_CHANGED = 0.25

    def __init__(self, dim: int) -> None:
        from usearch.index import Index  # type: ignore[import-not-found, unused-ignore]

        self.dim = dim
        self._index = Index(ndim=dim, metric="cos", dtype="f16", connectivity=self.CONNECTIVITY,
                            expansion_add=self.EXPANSION_ADD, expansion_search=self.EXPANSION_SEARCH)
        self.changed = False  # since it was built or restored: worth saving

    def __len__(self) -> int:
        return len(self._index)

    @classmethod
    def of(cls, file_ids: np.ndarray, vectors: np.ndarray) -> Self:
        n, dim = vectors.shape
        index = cls(dim)
        if n:
            index._index.add(_ids(file_ids).astype(np.uint64), vectors)  # on all cores
            index.changed = True
        return index

    @classmethod
    def restore(cls, path: Path, file_ids: np.ndarray, vectors: np.ndarray) -> Self | None:
        """The graph saved at `path`, brought up to date with the store's rows; None when it
        cannot be read, was made otherwise, or so much changed that building afresh is better.

        Every saved vector is compared with the store's, bit for bit: a file whose content
        changed under the same id, one gone, one new, an embedding of another version, all show.
        """
        n, dim = vectors.shape
        index = cls(dim)
        saved = index._index
        try:
            saved.load(str(path))  # keeps the search settings of `cls`, which a file does not hold
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("%s: cannot read the saved vector index (%s); building it afresh", path, exc)
            return None
        if saved.ndim != dim or saved.dtype.name != "F16" or saved.connectivity != cls.CONNECTIVITY:
            return None  # made by another version: build afresh
        keys = np.asarray(saved.keys[:], dtype=np.uint64)  # a slice: the keys as one array
        ids = _ids(file_ids)
        row_of = dict(zip(ids.tolist(), range(n), strict=True))
        rows = np.array([row_of.get(k, -1) for k in keys.tolist()], dtype=np.int64)  # -1: gone
        kept = rows >= 0
        same = np.zeros(len(keys), dtype=bool)
        if kept.any():
            held = np.vstack(cast(tuple[np.ndarray, ...], saved.get(keys[kept], dtype="f16")))
            same[kept] = (held.view(np.uint16) == vectors[rows[kept]].view(np.uint16)).all(axis=1)
        stale = keys[~same]  # gone from the store, or changed
        fresh = np.setdiff1d(ids, keys[same].astype(np.int64), assume_unique=True)  # new, or changed
        if len(stale) + len(fresh) > cls.RESTORE_MAX_CHANGED * max(n, 1):
            return None
        if len(stale):
            saved.remove(stale)
        if len(fresh):
            saved.add(fresh.astype(np.uint64), vectors[[row_of[k] for k in fresh.tolist()]])
        index.changed = bool(len(stale) or len(fresh))
        log.info("vector index read from %s: %d of %d embeddings brought up to date", path,
                 len(stale) + len(fresh), n)
        return index

    def save(self, path: Path) -> None:
        """Written whole beside and renamed over: a reader never sees half a graph."""
        partial = path.with_name(path.name + ".partial")
        self._index.save(str(partial))
        os.replace(partial, path)
        self.changed = False

    def add(self, file_id: int, vector: np.ndarray) -> None:
        row = _as_row(vector, self.dim).astype(np.float16)
        key = _ids(np.array([file_id])).astype(np.uint64)
        # usearch refuses a key it already holds, so a replacement is a removal and a new node.
        if self._index.contains(key[0]):
            self._index.remove(key[0])
        self._index.add(key, row[np.newaxis], threads=1)
        self.changed = True

    def remove(self, file_id: int) -> None:
        if file_id >= 0 and self._index.contains(file_id):
            self._index.remove(file_id)  # marks the node deleted; searches skip it
            self.changed = True

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0 or len(self._index) == 0:
            return _EMPTY[0].copy(), _EMPTY[1].copy()
        # One thread: a lone query is too small to share, and idle pool threads only contend.
        matches = self._index.search(_as_row(query, self.dim).astype(np.float32), k, threads=1)
        similarities = (1.0 - np.asarray(matches.distances, dtype=np.float32)).astype(np.float32)
        return np.asarray(matches.keys).astype(np.int64), similarities


def make_vector_index(kind: Literal["auto", "numpy", "usearch"], dim: int, expected_rows: int) -> VectorIndex:
    """An empty index for about `expected_rows` vectors; fill it with `.of(...)` or `.add`."""
    if kind == "numpy" or (kind == "auto" and expected_rows <= NUMPY_MAX_ROWS):
        return NumpyVectors(dim, max(1024, expected_rows))
    if kind == "auto" and importlib.util.find_spec("usearch") is None:
        _say_no_usearch()
        return NumpyVectors(dim, expected_rows)
    return UsearchVectors(dim)  # it grows as it goes: usearch has no use for the row count


@cache  # once a process: the reason does not change
def _say_no_usearch() -> None:
    log.info("over %d embeddings, but usearch is not installed: searching them all with numpy, about"
             " 1 ms a query per 1,000 (%s for the faster approximate index)",
             NUMPY_MAX_ROWS, install("cnn"))


def _as_row(vector: np.ndarray, dim: int) -> np.ndarray:
    row = np.asarray(vector)
    if row.shape != (dim,):
        raise ValueError(f"expected a vector of {dim} values, got shape {row.shape}")
    return row


def _check_finite(vectors: np.ndarray) -> None:
    # An infinite or NaN half would come out of the bit conversion as a huge finite score.
    halves = np.ascontiguousarray(vectors, dtype=np.float16).reshape(-1).view(np.uint16)
    step = 1 << 22
    for start in range(0, len(halves), step):
        if np.bitwise_and(halves[start:start + step], 0x7C00).max(initial=0) == 0x7C00:
            raise ValueError("a vector holds an infinite or NaN value")


def _ids(file_ids: np.ndarray) -> np.ndarray:
    # File ids are SQLite row ids, never negative: numpy marks a removed row -1, and usearch's
    # keys are unsigned.
    ids = np.asarray(file_ids, dtype=np.int64)
    if len(ids) and ids.min() < 0:
        raise ValueError("file ids must be >= 0")
    return ids
