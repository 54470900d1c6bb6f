"""The k nearest CNN embeddings (unit vectors, so cosine = dot product) for robust mode.

Three indexes behind one protocol, chosen by `make_vector_index`:

- `NumpyVectors`: exact brute force over float16 rows, scored in float32 a slice at a time.
- `CodedVectors`: a 512-bit code a vector in memory, the nearest codes scored exactly from the
  full vectors read back from the store: a library of a million in 64 MiB.
- `UsearchVectors`: a usearch HNSW graph over float16 vectors. usearch is optional and imported
  only when this index is built.

Figures are from `benchmarks/vectors.py` on the reference machine (2 cores, AVX-512).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, Protocol, Self, cast

import numpy as np

log = logging.getLogger("dupwatch")

# Up to this many rows `auto` scans with numpy; above it, codes. An exact numpy query grows
# with the rows and passes the 50 ms target about here (`benchmarks/vectors.py`; figures:
# docs/benchmarks.md, "CNN and robust mode"); the codes answer in a few ms at any size, but hold
# only a sketch of each vector and read the nearest back from the store.
NUMPY_MAX_ROWS = 50_000
CODES_MAGIC = b"dupwatch cnn codes 1\n"

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


Fetch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class CodedVectors:
    """Each vector as a 512-bit code in memory (64 bytes, not 2,560): the signs of its projections,
    less the library's mean, on fixed random directions (SimHash), whose Hamming distance follows
    the angle between two vectors. A search takes the RERANK codes nearest the query's, reads
    their full vectors where they are kept (`fetch`: the store, one statement), and returns the
    k nearest of those by their exact cosine: approximate only in which RERANK it scores.
    """

    BITS = 512
    RERANK = 512
    SEED = 20261204  # the directions: the same in every process, for every library

    def __init__(self, dim: int, fetch: Fetch, capacity: int = 1024) -> None:
        self.dim = dim
        self._fetch = fetch  # file ids → (those still known, their float16 vectors)
        directions = np.random.default_rng(self.SEED).standard_normal((dim, self.BITS))
        self._directions = directions.astype(np.float32)
        self._mean: np.ndarray | None = None  # of the first vectors coded: set once, kept
        # A row of codes per 64 bits, a column per vector: a search is one pass per row.
        self._codes = np.zeros((self.BITS // 64, max(1, capacity)), dtype=np.uint64)
        self._ids = np.full(max(1, capacity), -1, dtype=np.int64)
        self._size = 0
        self._slot: dict[int, int] | None = None  # file id → column, made at the first add by id

    def __len__(self) -> int:
        return int((self._ids[: self._size] >= 0).sum()) if self._slot is None else len(self._slot)

    @classmethod
    def of(cls, file_ids: np.ndarray, vectors: np.ndarray) -> Self:
        """Codes of `vectors`, which are kept as they are to be read back for the exact scores
        (for tests and benchmarks: a store's index reads them from the store)."""
        ids = _ids(file_ids)
        row_of = {int(i): n for n, i in enumerate(ids.tolist())}

        def fetch(wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = [row_of[i] for i in wanted.tolist() if i in row_of]
            return ids[rows], vectors[rows]

        index = cls(vectors.shape[1], fetch, max(1024, len(ids)))
        index.extend(ids, vectors)
        return index

    def extend(self, file_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Code new vectors (ids not indexed yet), a slice of the store at a time."""
        ids = _ids(file_ids)
        if not len(ids):
            return
        _check_finite(vectors)
        codes = self._code(vectors)
        if self._size + len(ids) > len(self._ids):
            self._resize(max(2 * len(self._ids), self._size + len(ids)))
        self._codes[:, self._size: self._size + len(ids)] = codes
        self._ids[self._size: self._size + len(ids)] = ids
        if self._slot is not None:
            self._slot.update(zip(ids.tolist(), range(self._size, self._size + len(ids)), strict=True))
        self._size += len(ids)

    def add(self, file_id: int, vector: np.ndarray) -> None:
        self.put(np.array([file_id]), _as_row(vector, self.dim)[None, :])

    def put(self, file_ids: np.ndarray, vectors: np.ndarray) -> None:
        """Code these vectors, each new or in place of its file's old one, coded together."""
        ids, vectors = _ids(file_ids), np.asarray(vectors)
        if not len(ids):
            return
        slots = self._slots()
        known = np.array([i in slots for i in ids.tolist()], dtype=bool)
        if known.any():  # the new ones are coded by `extend`, once
            _check_finite(vectors[known])
            self._codes[:, [slots[i] for i in ids[known].tolist()]] = self._code(vectors[known])
        if not known.all():
            self.extend(ids[~known], vectors[~known])

    def save(self, path: Path, position: bytes) -> None:
        """Write the codes to `path` with `position` (where the store's change log stood when
        they were last brought up to date), replacing the file whole: a reader sees the old file
        or the new one. A file that cannot be written is no harm: they are made again next time."""
        if sys.byteorder != "little":
            return  # written as the machine holds them, read back only where that is little-endian
        live = self._ids[: self._size] >= 0
        mean = np.zeros(self.dim, dtype=np.float32) if self._mean is None else self._mean
        header = (CODES_MAGIC + len(position).to_bytes(2, "big") + position
                  + int(live.sum()).to_bytes(8, "big") + self.dim.to_bytes(4, "big")
                  + bytes([self._mean is not None]))
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        try:
            with open(part, "wb") as f:
                f.write(header)
                f.write(mean.astype(np.float32).data)
                # A row of codes at a time (an eighth of them), not a copy of them all at the stop.
                for row in (self._ids, *self._codes):
                    f.write(row[: self._size][live].data)
            os.replace(part, path)
        except OSError as exc:
            log.warning("%s: cannot save the CNN codes (%s); they are made again at the next start",
                        path, exc)
            with contextlib.suppress(OSError):
                os.unlink(part)

    @classmethod
    def load(cls, path: Path, dim: int, fetch: Fetch) -> tuple[Self, bytes] | None:
        """The codes saved at `path` and the change-log position they were saved at; None when
        there are none, or not for vectors of `dim` values, or the file was cut short. Read
        straight into the index's arrays (with room to grow), not through a copy of the file."""
        words = cls.BITS // 64
        try:
            with open(path, "rb") as f:
                if f.read(len(CODES_MAGIC)) != CODES_MAGIC or sys.byteorder != "little":
                    return None
                position = f.read(int.from_bytes(f.read(2), "big"))
                count, width, has_mean = f.read(8), f.read(4), f.read(1)
                n = int.from_bytes(count, "big")
                if (len(count), len(width), len(has_mean)) != (8, 4, 1):
                    return None
                if int.from_bytes(width, "big") != dim:
                    return None  # another model's
                if os.fstat(f.fileno()).st_size - f.tell() != 4 * dim + 8 * n + 8 * words * n:
                    return None  # cut short: a disk that filled up, a copy not finished
                index = cls(dim, fetch, max(1024, n + n // 8))
                mean = np.empty(dim, dtype=np.float32)
                rows = [index._codes[word, :n] for word in range(words)]
                parts: list[np.ndarray] = [mean, index._ids[:n], *rows]
                for part in parts:
                    if f.readinto(part.view(np.uint8).data) != part.nbytes:
                        return None
        except OSError:
            return None
        index._mean = mean if has_mean[0] else None
        index._size = n
        return index, position

    def remove(self, file_id: int) -> None:
        slot = self._slots().pop(file_id, None)
        if slot is not None:
            self._ids[slot] = -1  # a tombstone: its code is never a candidate

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_row(query, self.dim).astype(np.float32)
        n = self._size
        if k <= 0 or n == 0:
            return _EMPTY[0].copy(), _EMPTY[1].copy()
        mine = self._code(q[None, :])[:, 0]
        distances = np.bitwise_count(self._codes[0, :n] ^ mine[0]).astype(np.uint16)
        for word in range(1, len(mine)):
            distances += np.bitwise_count(self._codes[word, :n] ^ mine[word])
        distances[self._ids[:n] < 0] = np.iinfo(np.uint16).max
        wanted = max(k, self.RERANK)
        if wanted < n:
            # The `wanted` nearest without sorting them all: every code nearer than the
            # wanted-th one's distance, then the first of those at that distance.
            within = np.cumsum(np.bincount(distances, minlength=self.BITS + 1))
            last = int(np.searchsorted(within, wanted))
            fewer = int(within[last - 1]) if last > 0 else 0
            at = np.flatnonzero(distances == last)[: wanted - fewer]
            rows = np.concatenate([np.flatnonzero(distances < last), at])
        else:
            rows = np.flatnonzero(self._ids[:n] >= 0)
        found, vectors = self._fetch(self._ids[rows])
        if not len(found):
            return _EMPTY[0].copy(), _EMPTY[1].copy()
        scores = np.asarray(vectors, dtype=np.float32) @ q
        top = np.argsort(-scores, kind="stable")[:k]
        return np.asarray(found, dtype=np.int64)[top], scores[top]

    def _code(self, vectors: np.ndarray) -> np.ndarray:
        """(bits // 64, n) codes of n vectors, made a slice at a time (float32 is twice float16)."""
        out = np.empty((self.BITS // 64, len(vectors)), dtype=np.uint64)
        for start in range(0, len(vectors), 16_384):
            chunk = np.asarray(vectors[start: start + 16_384], dtype=np.float32)
            if self._mean is None:
                self._mean = chunk.mean(axis=0)
            signs = (chunk - self._mean) @ self._directions > 0
            out[:, start: start + len(chunk)] = np.packbits(signs, axis=1).view(np.uint64).T
        return out

    def _slots(self) -> dict[int, int]:
        if self._slot is None:
            live = np.flatnonzero(self._ids[: self._size] >= 0)
            self._slot = dict(zip(self._ids[live].tolist(), live.tolist(), strict=True))
        return self._slot

    def _resize(self, capacity: int) -> None:
        codes = np.zeros((self._codes.shape[0], capacity), dtype=np.uint64)
        ids = np.full(capacity, -1, dtype=np.int64)
        codes[:, : self._size] = self._codes[:, : self._size]
        ids[: self._size] = self._ids[: self._size]
        self._codes, self._ids = codes, ids


Pages = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


class StreamedVectors:
    """No index: each search reads every vector, a page at a time, and keeps the nearest. For a
    process that searches once (a query), where building an index would cost more than the
    search it serves. Nothing is added to it."""

    def __init__(self, dim: int, pages: Pages) -> None:
        self.dim = dim
        self._pages = pages  # a fresh pass over (ids, float16 vectors), a page at a time

    @classmethod
    def of(cls, file_ids: np.ndarray, vectors: np.ndarray) -> Self:
        return cls(vectors.shape[1], lambda: iter([(_ids(file_ids), vectors)]))

    def __len__(self) -> int:
        return sum(len(ids) for ids, _ in self._pages())

    def add(self, file_id: int, vector: np.ndarray) -> None:
        raise TypeError("a streamed search is read-only: it serves one query")

    def remove(self, file_id: int) -> None:
        raise TypeError("a streamed search is read-only: it serves one query")

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_row(query, self.dim).astype(np.float32)
        best_ids, best = _EMPTY[0].copy(), _EMPTY[1].copy()
        if k <= 0:
            return best_ids, best
        for ids, vectors in self._pages():
            scores = np.asarray(vectors, dtype=np.float32) @ q
            best_ids, best = np.concatenate([best_ids, ids]), np.concatenate([best, scores])
            if len(best) > k:
                keep = np.argpartition(-best, k)[:k]
                best_ids, best = best_ids[keep], best[keep]
        order = np.argsort(-best, kind="stable")
        return best_ids[order], best[order]


def resolved(kind: Literal["auto", "numpy", "usearch", "codes"],
             expected_rows: int) -> Literal["numpy", "usearch", "codes"]:
    """The index `make_vector_index` makes for `kind` and about `expected_rows` vectors."""
    if kind == "numpy" or (kind == "auto" and expected_rows <= NUMPY_MAX_ROWS):
        return "numpy"
    return "usearch" if kind == "usearch" else "codes"


def make_vector_index(kind: Literal["auto", "numpy", "usearch", "codes"], dim: int, expected_rows: int,
                      fetch: Fetch | None = None) -> VectorIndex:
    """An empty index for about `expected_rows` vectors; fill it with `.of(...)` or `.add`
    (`CodedVectors`: `.extend`). `fetch` reads full vectors by id, for `CodedVectors`."""
    made = resolved(kind, expected_rows)
    if made == "numpy":
        return NumpyVectors(dim, max(1024, expected_rows))
    if made == "usearch":
        return UsearchVectors(dim)  # it grows as it goes: usearch has no use for the row count
    if fetch is None:
        raise ValueError("coded vectors need a way to read the full vectors back")
    return CodedVectors(dim, fetch, max(1024, expected_rows))


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
