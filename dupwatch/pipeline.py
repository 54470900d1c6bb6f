"""The one pipeline every command runs: decode → fingerprint → candidates → confirm → cache.

`scan` (and later the watcher) feed paths to `ingest`; `query` and `compare` use the same
fingerprints and the same confirm method without recording anything. Decoding runs in worker
processes, fed in order with a bounded window; everything that touches the store and the index
runs here, in one thread, so results come out in input order and the store has one writer.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from dupwatch import raw, shots
from dupwatch.candidates.base import Candidate, Scorer, Search
from dupwatch.candidates.closer import CloserLook
from dupwatch.candidates.geometry import GeometryCheck
from dupwatch.candidates.hamming import HammingSearch
from dupwatch.candidates.neighbours import NeighbourSearch
from dupwatch.config import Config
from dupwatch.errors import ConfigError, SkipFile
from dupwatch.extras import install
from dupwatch.fingerprint import Plan, fingerprint_files, fingerprint_now
from dupwatch.library import Found, Library
from dupwatch.methods import geometry
from dupwatch.methods.cnn import CnnMethod
from dupwatch.methods.cosine import Cosine
from dupwatch.methods.registry import get_hash, get_method
from dupwatch.ondemand import OnDemand
from dupwatch.record import Match, Photo
from dupwatch.store.base import Store
from dupwatch.workers import Workers

# Measured on the 104 shared photos: true 90°/180°/mirrored copies score ≥ 0.97; a distinct
# photo, turned, at most 0.90 (and one straightened 25°, transposed, 0.948).
TURNED_THRESHOLD = 0.96
# A turn on a canvas smaller than this is not worth a word in a notice (the fit is good to 0.1°).
TURN_SHOWN = 0.5
TROUBLE = "a decoding process died reading it (killed for memory, or a crash in a decoder)"

log = logging.getLogger("dupwatch")


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


class Pipeline:
    def __init__(self, config: Config, store: Store, saved_index: bool = False) -> None:
        """`saved_index`: take the hash index saved beside the cache when it is current (a
        query); else it is read from the cache itself (a scan, the watcher), whose every page
        that start reads is then known to be sound."""
        self.config = config
        self.store = store
        options = config.method_options()
        robust = config.robust.enabled
        dihedral = config.candidates.dihedral or robust
        hashing = get_hash(config.candidates.hash, "candidates.hash")
        self.confirm = get_method(config.confirm.method, "confirm.method", options)
        on_demand = OnDemand(store)
        confirm = Scorer(store, self.confirm, config.confirm.resolved_threshold(), on_demand)
        # Turned copies are confirmed by the cosine of the turned pixel grid, at a stricter
        # threshold: seven more ways to look are seven more ways to be fooled. Only those at it
        # are kept, above anything a look past an overlay can score: that look is left out.
        turned = Scorer(store, Cosine(options, overlay=False), TURNED_THRESHOLD, on_demand)
        if not saved_index:
            # Files other hosts index from now on join the searches (`Library.follow`); a query
            # matches once, against what the searches read now.
            store.listen()
        self.hamming = HammingSearch(store, hashing, confirm, config.candidates.max_distance,
                                     config.candidates.limit, turned if dihedral else None, saved_index)
        self.searches: list[Search] = [self.hamming]
        names = [hashing.name, self.confirm.name, *([turned.method.name] if dihedral else [])]
        cnn: CnnMethod | None = None
        if robust:
            method = get_method("cnn", "robust.enabled", options)
            assert isinstance(method, CnnMethod)
            cnn = method
            self.searches.append(NeighbourSearch(store, cnn, config.robust.threshold, config.robust.k,
                                                 config.robust.index, self.hamming.distance, saved_index))
            names.append(cnn.name)
        self.closer = CloserLook(store)
        self.geometry = _geometry(config, store, on_demand, cnn)
        if self.geometry is not None and robust:
            # Robust mode sends most new photos to geometry: find their features in the workers,
            # from the decode they already make. Otherwise only a rare grey-zone pair needs them.
            names.append(self.geometry.method.name)
        self.plan = Plan(tuple(dict.fromkeys(names)), options, config.scan.max_file_mb)
        self.library = Library(store, self.searches, config.reference_roots(), config.groups.keep, on_demand)
        self._signature = self.plan.signature
        self._workers: Workers | None = None

    def close(self) -> None:
        """Before the store closes: the workers end; a search may keep its index for the next run."""
        if self._workers is not None:
            self._workers.close()
            self._workers = None
        self.library.close()

    # -- ingest: scan and watch ---------------------------------------------------------------

    def ingest(self, paths: Iterable[str | SkipFile], workers: int = 1,
               idle: Callable[[], None] = lambda: None) -> Iterator[Event]:
        """Index each path (skipping unchanged files) and yield what happened, in input order.

        The worker processes stay up between calls (`close` ends them); `idle` is called every
        fraction of a second while this waits on them, for a service's watchdog.
        """
        plan, size = self.plan, 1
        preload: tuple[str, ...] = ()
        if any(m.batched for m in plan.instances):
            preload = ("torch",)  # imported once by the forkserver, shared by the workers
            # Each worker decodes and embeds its own chunk with one torch thread: see
            # `fingerprint_files` for why the model does not run here beside them.
            size = self.config.cnn.batch_size
            if workers > 1:
                plan = replace(plan, options=replace(plan.options, cnn_threads=1))
        if self._workers is None or self._workers.count != workers:
            if self._workers is not None:
                self._workers.close()
            self._workers = Workers(workers, preload)
        pool = self._workers
        window = max(4, 4 * workers)  # chunks in flight
        pending: deque[Event | _Chunk] = deque()
        chunk: list[str] = []

        def submit() -> None:
            if chunk:
                future = pool.submit(idle, fingerprint_files, list(chunk), plan)
                pending.append(_Chunk(future, list(chunk), plan, pool.generation))
                chunk.clear()

        for item in paths:
            if isinstance(item, SkipFile):
                submit()  # keep the input order
                pending.append(item)
            elif self._unchanged(item):
                submit()
                pending.append(Unchanged(item))
            elif (trouble := self._troubled(item)) is not None:
                submit()
                pending.append(trouble)
            else:
                chunk.append(item)
                if len(chunk) >= size:
                    submit()
            yield from self._drain(pending, lambda: len(pending) > window, idle)
        submit()
        yield from self._drain(pending, lambda: True, idle)
        self.store.commit()

    def _drain(self, pending: deque[Event | _Chunk], must: Callable[[], bool],
               idle: Callable[[], None]) -> Iterator[Event]:
        """Record what is done at the head of the queue (or must be, to bound it), in order."""
        while pending and (must() or _ready(pending[0])):
            item = pending.popleft()
            results = self._results(item, idle) if isinstance(item, _Chunk) else [item]
            for result in results:
                if isinstance(result, Photo):
                    yield from self.record(result)
                else:
                    if isinstance(result, SkipFile) and result.seen is not None:
                        self.library.remember_broken(result.path, *result.seen, result.reason)
                    yield result

    def _results(self, chunk: _Chunk, idle: Callable[[], None]) -> list[Photo | SkipFile]:
        assert self._workers is not None
        try:
            return list(self._workers.wait(chunk.future, idle))
        except BrokenProcessPool:
            pass
        # A worker died (killed for memory, a crash in a C library) with this chunk, or beside
        # it. Each of its files is read again alone, so that the one that kills a worker is
        # named, and remembered: it is not tried again until it changes.
        workers = self._workers
        workers.replace(chunk.generation)
        results: list[Photo | SkipFile] = []
        for path in chunk.paths:
            future = workers.submit(idle, fingerprint_files, [path], chunk.plan)
            generation = workers.generation
            try:
                results += workers.wait(future, idle)
            except BrokenProcessPool:
                workers.replace(generation)
                results.append(self._trouble(path, TROUBLE))
        return results

    def _troubled(self, path: str) -> SkipFile | None:
        """A file that killed a worker before, or whose bytes are no photo, unchanged since: not
        tried again, nor said again."""
        known = self.library.trouble(path)
        if known is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None  # let the worker say why
        if (st.st_size, st.st_mtime_ns) != (known.size, known.mtime_ns):
            return None
        return SkipFile(path, f"{known.reason} (at an earlier run; tried again when the file changes)",
                        told=True)

    def _trouble(self, path: str, reason: str) -> SkipFile:
        try:
            st = os.stat(path)
        except OSError:
            return SkipFile(path, reason)
        self.library.remember_trouble(path, st, reason)
        return SkipFile(path, reason)

    def _unchanged(self, path: str) -> bool:
        known = self.library.known(path)
        if known is None or known.plan != self._signature:
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False  # let the worker report why
        return st.st_size == known.size and st.st_mtime_ns == known.mtime_ns

    def record(self, photo: Photo) -> Iterator[Event]:
        self.library.replacing(photo.path)
        self.library.follow()
        told = self.library.add(photo, self._signature, self.find(photo))
        yield Indexed(photo.path)
        if told is not None:
            yield Duplicate(told)

    # -- candidates and confirm ---------------------------------------------------------------

    def find(self, photo: Photo) -> Found | None:
        """The earlier file that `photo` duplicates, if any: exact bytes first, then each search.
        Of the files it duplicates, a group's keeper is told before its copies (a new copy is
        reported against the copy to keep, not along a chain); all of them are linked.

        A pair the user marked "not a duplicate" (by content: wherever either file is now, and
        whatever it is called) is passed over, and the next best candidate may match instead; so
        is a camera's RAW+JPEG sibling (`raw.siblings`) unless `candidates.report_raw_siblings`.
        Siblings never share bytes, so the exact path needs no such check.
        """
        siblings = not self.config.candidates.report_raw_siblings
        apart = self._apart(photo)
        rejected = self.store.not_duplicates(photo.content_hash)
        if photo.content_hash not in rejected:
            paths = [(i, self.store.path_of(i)) for i in self.store.exact(photo.content_hash)]
            exact = [(i, p) for i, p in paths
                     if p is not None and p != photo.path and self.library.present(p)]
            if exact:
                file_id, path = self._keeper_first(exact)[0]
                return Found(Match(photo.path, path, "exact", "sha256", 1.0, 0), file_id,
                             tuple(i for i, _ in exact))
        for search in self.searches if photo.exact_only is None else ():
            ranked = search.rank(photo)
            if rejected:
                ranked = [c for c in ranked if self.store.content_hash(c.file_id) not in rejected]
            if siblings:
                ranked = [c for c in ranked if not raw.siblings(photo.path, c.path)]
            dups = {c.file_id: c for c in apart(self._confirmed(photo, apart(ranked)))
                    if c.duplicate and self.library.present(c.path)}
            if dups:
                best = dups[self._keeper_first([(c.file_id, c.path) for c in dups.values()])[0][0]]
                match = Match(photo.path, best.path, "near", best.method, best.score, best.distance,
                              best.transform, best.geometry, self._turned(photo, best.file_id))
                return Found(match, best.file_id, tuple(dups))
        return None

    def _apart(self, photo: Photo, shown: bool = False) -> Callable[[list[Candidate]], list[Candidate]]:
        """What passes over the candidates one camera took at another moment than `photo`: two
        shots (`shots.apart`), not a duplicate, whatever a score says; with `shown` (a query's
        list of the images most like one), kept in the list as no duplicate. Only duplicates are
        looked up, once each (before and after the confirm): every other candidate is no
        duplicate already."""
        taken = photo.taken
        if taken is None or self.config.candidates.report_other_shots:
            return lambda ranked: ranked
        theirs: dict[int, str | None] = {}

        def other_shot(c: Candidate) -> bool:
            if not c.duplicate:
                return False
            if c.file_id not in theirs:
                theirs[c.file_id] = self.store.taken(c.file_id)
            return shots.apart(taken, theirs[c.file_id]) is not None

        if shown:
            return lambda ranked: [replace(c, duplicate=False) if other_shot(c) else c for c in ranked]
        return lambda ranked: [c for c in ranked if not other_shot(c)]

    def _keeper_first(self, files: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """Files best first (as ranked), a group's keeper before the rest."""
        return sorted(files, key=lambda f: self.library.keeper_of(f[0]) != f[0])

    def _turned(self, photo: Photo, file_id: int) -> float | None:
        """How far `photo` is turned from an indexed file on their canvases, if at all."""
        turn = photo.turned - self.store.turned(file_id)
        return round(turn, 1) if abs(turn) >= TURN_SHOWN else None

    def _confirmed(self, photo: Photo, ranked: list[Candidate]) -> list[Candidate]:
        ranked = self.closer.confirm(photo, ranked)
        if self.geometry is None:
            return ranked
        return self.geometry.confirm(photo, ranked)

    # -- query: nothing recorded --------------------------------------------------------------

    def query(self, path: str, k: int) -> list[Candidate]:
        """The k indexed images most like `path`: duplicates first, then by score."""
        photo = fingerprint_now(path, self.plan)
        ranked: list[Candidate] = []
        for file_id in self.store.exact(photo.content_hash):
            other = self.store.path_of(file_id)
            if other is not None and other != path and self.library.present(other):
                ranked.append(Candidate(file_id, other, 1.0, 0, True, "sha256"))
        apart = self._apart(photo, shown=True)
        for search in self.searches if photo.exact_only is None else ():
            ranked += apart(self._confirmed(photo, search.rank(photo, wide=True)))
        best: dict[str, Candidate] = {}
        for c in ranked:
            if self.library.present(c.path):
                best.setdefault(c.path, c)
        return sorted(best.values(), key=lambda c: (not c.duplicate, -c.score))[:k]


def _geometry(config: Config, store: Store, on_demand: OnDemand,
              cnn: CnnMethod | None) -> GeometryCheck | None:
    wanted = config.geometry.enabled
    if wanted is False or (wanted == "auto" and not geometry.available()):
        return None
    if not geometry.available():
        raise ConfigError("geometry.enabled", f"needs OpenCV: {install('geometry')}")
    return GeometryCheck(store, config.geometry.threshold, config.geometry.checks,
                         config.geometry.verify_from, on_demand, cnn)


def _ready(item: Event | _Chunk) -> bool:
    return not isinstance(item, _Chunk) or item.future.done()


@dataclass(frozen=True)
class _Chunk:
    """Files sent to a worker together, and the fingerprints they come back with."""

    future: Future[list[Photo | SkipFile]]
    paths: list[str]
    plan: Plan
    generation: int  # of the worker pool it was sent to


def default_workers(configured: int) -> int:
    return configured or os.cpu_count() or 1
