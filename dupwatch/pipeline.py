"""The one pipeline every command runs: decode → fingerprint → candidates → confirm → cache.

`scan` (and later the watcher) feed paths to `ingest`; `query` and `compare` use the same
fingerprints and the same confirm method without recording anything. Decoding runs in worker
processes, fed in order with a bounded window; everything that touches the store and the index
runs here, in one thread, so results come out in input order and the store has one writer.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np

from dupwatch.config import Config
from dupwatch.errors import SkipFile
from dupwatch.fingerprint import Plan, fingerprint_file
from dupwatch.index.hamming import HammingIndex
from dupwatch.methods.registry import get_hash, get_method
from dupwatch.record import Match, Photo
from dupwatch.store.base import Store


@dataclass(frozen=True)
class Indexed:
    path: str


@dataclass(frozen=True)
class Unchanged:
    path: str


@dataclass(frozen=True)
class Duplicate:
    match: Match


Event = Indexed | Unchanged | Duplicate | SkipFile


@dataclass(frozen=True)
class Ranked:
    path: str
    score: float
    distance: int
    duplicate: bool


class Pipeline:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.hash = get_hash(config.candidates.hash, "candidates.hash")
        self.confirm = get_method(config.confirm.method, "confirm.method")
        self.threshold = config.confirm.resolved_threshold()
        self.plan = Plan(tuple(dict.fromkeys((self.hash.name, self.confirm.name))))
        self._signature = self.plan.signature
        ids, blobs = store.fingerprints(self.hash.key)
        self.index = HammingIndex.of(ids, np.frombuffer(b"".join(blobs), dtype=np.uint64))

    # -- ingest: scan and watch ---------------------------------------------------------------

    def ingest(self, paths: Iterable[str | SkipFile], workers: int = 1) -> Iterator[Event]:
        """Index each path (skipping unchanged files) and yield what happened, in input order."""
        with _executor(workers) as pool:
            window = max(8, 16 * workers)
            pending: deque[Event | Future[Photo | SkipFile]] = deque()
            for item in paths:
                if isinstance(item, SkipFile):
                    pending.append(item)
                elif self._unchanged(item):
                    pending.append(Unchanged(item))
                else:
                    pending.append(pool.submit(fingerprint_file, item, self.plan))
                while pending and (len(pending) > window or _ready(pending[0])):
                    yield from self._finish(pending.popleft())
            while pending:
                yield from self._finish(pending.popleft())
        self.store.commit()

    def _unchanged(self, path: str) -> bool:
        known = self.store.get(path)
        if known is None or known.plan != self._signature:
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False  # let the worker report why
        return st.st_size == known.size and st.st_mtime_ns == known.mtime_ns

    def _finish(self, item: Event | Future[Photo | SkipFile]) -> Iterator[Event]:
        if not isinstance(item, Future):
            yield item
            return
        result = item.result()
        if isinstance(result, SkipFile):
            yield result
            return
        yield from self.record(result)

    def record(self, photo: Photo) -> Iterator[Event]:
        known = self.store.get(photo.path)
        if known is not None:
            self.index.remove(known.id)  # its old content must not be found as a candidate
        found = self.find(photo)
        file_id = self.store.put(photo, self._signature)
        self.index.add(file_id, self._hash_of(photo))
        yield Indexed(photo.path)
        if found is not None:
            match, match_id = found
            if self.store.record_pair(file_id, match_id, match):
                yield Duplicate(match)

    def forget_missing(self, root: str, seen: set[str]) -> int:
        """Drop cached files under `root` that are gone from disk; returns how many."""
        gone = [p for p in self.store.paths_under(root) if p not in seen and not os.path.lexists(p)]
        for path in gone:
            file_id = self.store.remove(path)
            if file_id is not None:
                self.index.remove(file_id)
        self.store.commit()
        return len(gone)

    # -- candidates and confirm ---------------------------------------------------------------

    def find(self, photo: Photo) -> tuple[Match, int] | None:
        """The best earlier file that `photo` duplicates, if any."""
        for file_id in self.store.exact(photo.content_hash):
            path = self.store.path_of(file_id)
            if path is not None and path != photo.path and os.path.exists(path):
                return Match(photo.path, path, "exact", "sha256", 1.0, 0), file_id
        ids, distances = self.index.search(self._hash_of(photo), self.config.candidates.max_distance)
        confirmed = self._confirm(photo, ids, distances, self.config.candidates.limit)
        for r, file_id in confirmed:
            if r.duplicate:
                return Match(photo.path, r.path, "near", self.confirm.name, r.score, r.distance), file_id
        return None

    def _confirm(
        self, photo: Photo, ids: np.ndarray, distances: np.ndarray, limit: int
    ) -> list[tuple[Ranked, int]]:
        """Score the nearest `limit` candidates with the confirm method, best first."""
        mine = self.confirm.from_bytes(photo.fingerprints[self.confirm.key])
        candidates: list[tuple[int, int, str, np.ndarray]] = []
        for file_id, distance in zip(ids[:limit].tolist(), distances[:limit].tolist(), strict=True):
            path = self.store.path_of(file_id)
            if path is None or path == photo.path:
                continue
            theirs = self._stored_fingerprint(file_id, path)
            if theirs is not None:
                candidates.append((file_id, distance, path, theirs))
        scores = self.confirm.compare_many(mine, [c[3] for c in candidates])
        scored = [(Ranked(path, score, distance, score >= self.threshold), file_id)
                  for (file_id, distance, path, _), score in zip(candidates, scores, strict=True)]
        scored.sort(key=lambda pair: (-pair[0].score, pair[0].distance, pair[1]))
        return [(r, i) for r, i in scored if os.path.exists(r.path)]

    def _stored_fingerprint(self, file_id: int, path: str) -> np.ndarray | None:
        data = self.store.fingerprint(file_id, self.confirm.key)
        if data is None:
            # Indexed under another confirm method: fingerprint it now, once, from the file.
            result = fingerprint_file(path, Plan((self.confirm.name,)))
            if isinstance(result, SkipFile):
                return None
            data = result.fingerprints[self.confirm.key]
            self.store.put_fingerprint(file_id, self.confirm.key, data)
        return self.confirm.from_bytes(data)

    def _hash_of(self, photo: Photo) -> int:
        return int(self.hash.from_bytes(photo.fingerprints[self.hash.key]))

    # -- query: nothing recorded --------------------------------------------------------------

    def query(self, path: str, k: int) -> list[Ranked]:
        """The k indexed images most like `path`, best first."""
        result = fingerprint_file(path, self.plan)
        if isinstance(result, SkipFile):
            raise result
        ranked: list[Ranked] = []
        exact = [p for i in self.store.exact(result.content_hash) if (p := self.store.path_of(i))]
        ranked += [Ranked(p, 1.0, 0, True) for p in exact if p != path and os.path.exists(p)]
        # Rank by the confirm score among the nearest hashes: a wider net than ingest casts.
        ids, distances = self.index.search(self._hash_of(result), 64)
        seen = set(exact)
        for r, _ in self._confirm(result, ids, distances, max(8 * k, 256)):
            if r.path not in seen:
                ranked.append(r)
        return ranked[:k]


def _ready(item: Event | Future[Photo | SkipFile]) -> bool:
    return not isinstance(item, Future) or item.done()


class InlineExecutor(Executor):
    """Runs each task at submit: for one worker, one file, and tests that need no processes."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future[object] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return InlineExecutor()
    # forkserver, not fork: the watcher runs threads, and forking a threaded process is unsafe.
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["dupwatch.fingerprint"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def default_workers(configured: int) -> int:
    return configured or os.cpu_count() or 1
