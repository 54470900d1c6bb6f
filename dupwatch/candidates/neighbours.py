"""Robust mode's candidates: the nearest CNN embeddings, whatever the hash says.

A photo turned by 25°, cropped to 60 % or seen in perspective has a hash unlike its original's,
but its EfficientNet embedding is still among the original's nearest neighbours. The k nearest
are scored by CNN cosine against `robust.threshold`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from dupwatch.candidates.base import Candidate
from dupwatch.index.vectors import (
    CodedVectors,
    StreamedVectors,
    UsearchVectors,
    VectorIndex,
    make_vector_index,
    resolved,
)
from dupwatch.methods.cnn import CnnMethod
from dupwatch.record import Photo
from dupwatch.store.base import Store

log = logging.getLogger("dupwatch")

PAGE = 10_000  # files whose vectors are read back at a time to bring the codes up to date


class NeighbourSearch:
    def __init__(self, store: Store, method: CnnMethod, threshold: float, k: int,
                 index: Literal["auto", "numpy", "usearch", "codes"],
                 distance: Callable[[Photo, int], int], once: bool = False) -> None:
        """`once`: for a process that searches once (a query): no index is built, the search
        reads every embedding a page at a time, unless codes saved by a watcher or a scan can
        be brought up to date.

        Codes (a large library) are saved beside the cache at the stop, with the position of
        the cache's change log they hold everything up to; the next start reads them back and
        codes again only the files any writer changed since, instead of every embedding."""
        self.store = store
        self.method = method
        self.threshold = threshold
        self.k = k
        self._distance = distance
        self.keys: tuple[str, ...] = (method.key,)
        self._saved: Path | None = None
        self._codes: Path | None = None  # where the codes are kept between runs
        self._synced: bytes | None = None  # the change log's position the codes hold all of
        self._on_disk: bytes | None = None  # the position of the codes saved there, as read
        dim, rows = method.shape[0], store.count()
        if resolved(index, rows) == "codes":
            self._codes = store.beside("vectors.codes")
            kept = self._restored(dim)
            if kept is not None:
                self.index: VectorIndex = kept
                return
        if once:
            self.index = StreamedVectors(dim, self._pages)
            return
        empty = make_vector_index(index, dim, rows, self._fetch)
        if isinstance(empty, CodedVectors):
            # A page of the store at a time: the full vectors stay there, read back for the
            # nearest codes of each search. The log's position first: what is written while
            # the pages are read is read again when the codes are saved.
            self._synced = store.log_position()
            for ids, vectors in self._pages():
                empty.extend(ids, vectors)
            self.index = empty
            return
        ids, blobs = store.fingerprints(method.key)
        vectors = self._vectors(blobs)
        # An HNSW graph takes about a minute to build at 100,000 photos, and it is the same graph
        # at every start: it is kept beside the cache and brought up to date instead.
        self._saved = store.beside("vectors.usearch") if isinstance(empty, UsearchVectors) else None
        restored = None
        if self._saved is not None and self._saved.exists():
            restored = UsearchVectors.restore(self._saved, ids, vectors)
        self.index = restored or (type(empty).of(ids, vectors) if len(ids) else empty)

    def _restored(self, dim: int) -> CodedVectors | None:
        """The codes saved at the last stop, brought up to date from the store's change log;
        None when there are none, or the log no longer reaches back to them."""
        if self._codes is None or (now := self.store.log_position()) is None:
            return None
        loaded = CodedVectors.load(self._codes, dim, self._fetch)
        if loaded is None:
            return None
        codes, position = loaded
        self._on_disk = position
        changed = self.store.changes_since(position)
        if changed is None:
            return None
        self._catch_up(codes, changed)
        self._synced = now
        return codes

    def _catch_up(self, codes: CodedVectors, changed: list[int]) -> None:
        """Code again the vectors of these files; those forgotten, or left without one, go."""
        for start in range(0, len(changed), PAGE):
            wanted = np.array(changed[start:start + PAGE], dtype=np.int64)
            ids, vectors = self._fetch(wanted)
            codes.put(ids, vectors)
            for gone in np.setdiff1d(wanted, ids).tolist():
                codes.remove(gone)

    def _pages(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for ids, blobs in self.store.fingerprint_pages(self.method.key):
            yield ids, self._vectors(blobs)

    def _vectors(self, blobs: list[bytes]) -> np.ndarray:
        return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), *self.method.shape)

    def _fetch(self, file_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The full vectors of these files, those still known, in one read of the store."""
        stored = self.store.fingerprints_of(file_ids.tolist(), self.method.key)
        found = [(i, data) for i in file_ids.tolist() if (data := stored.get(i, ("", None))[1]) is not None]
        return (np.array([i for i, _ in found], dtype=np.int64),
                self._vectors([data for _, data in found]))

    def close(self) -> None:
        """Save the codes, or the graph when it changed (a kill skips this: the next start
        catches up)."""
        if isinstance(self.index, CodedVectors) and self._codes is not None:
            self._save_codes(self.index, self._codes)
            return
        if self._saved is None or not isinstance(self.index, UsearchVectors) or not self.index.changed:
            return
        try:
            self.index.save(self._saved)
        except (OSError, RuntimeError) as exc:
            log.warning("%s: cannot save the vector index (%s); it is built again at the next start",
                        self._saved, exc)

    def _save_codes(self, codes: CodedVectors, path: Path) -> None:
        """Saved with the log's position now, once every change since they were last in step
        (this process's own, and those of others it did not follow) is in them."""
        self.store.commit()
        now = self.store.log_position()
        changed = None if self._synced is None else self.store.changes_since(self._synced)
        if now is None or changed is None:
            with contextlib.suppress(OSError):
                path.unlink()  # not to be trusted: made again at the next start
            return
        self._catch_up(codes, changed)
        if now != self._on_disk:
            codes.save(path, now)
            self._on_disk = now
        self._synced = now

    def _vector(self, photo: Photo) -> np.ndarray:
        return self.method.from_bytes(photo.fingerprints[self.method.key])

    def add(self, file_id: int, fingerprints: Mapping[str, bytes]) -> None:
        self.index.add(file_id, self.method.from_bytes(fingerprints[self.method.key]))

    def remove(self, file_id: int) -> None:
        self.index.remove(file_id)

    def rank(self, photo: Photo, wide: bool = False) -> list[Candidate]:
        ids, similarities = self.index.search(self._vector(photo).astype(np.float32), self.k + 1)
        out = []
        for file_id, similarity in zip(ids.tolist(), similarities.tolist(), strict=True):
            path = self.store.path_of(file_id)
            if path is None or path == photo.path:
                continue
            score = max(0.0, min(1.0, float(similarity)))
            out.append(Candidate(file_id, path, score, self._distance(photo, file_id),
                                 score >= self.threshold, self.method.name))
        return out[: self.k]
