"""What a candidate search is, and the scoring every search shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dupwatch.methods.base import Method
from dupwatch.ondemand import OnDemand
from dupwatch.record import Photo
from dupwatch.store.base import Store


@dataclass(frozen=True)
class Candidate:
    file_id: int
    path: str
    score: float
    distance: int  # Hamming distance of the candidate hashes (after the transform, if any)
    duplicate: bool  # the score reached the search's threshold
    method: str
    transform: str | None = None  # how the new photo was turned from this one, if it was
    geometry: dict[str, Any] | None = None  # what a geometric check found, if one ran


@dataclass(frozen=True)
class Lookup:
    """What one search of the index found: the photo's fingerprint as the search turned it, and
    the files it found at their distances."""

    mine: np.ndarray
    ids: Sequence[int]
    distances: Sequence[int]
    transform: str | None = None  # how the new photo was turned from the files found, if it was


class Search(Protocol):
    keys: tuple[str, ...]  # the fingerprints it searches by (method keys)

    def add(self, file_id: int, fingerprints: Mapping[str, bytes]) -> None:
        """A file joins the search by its fingerprints (at least `keys`)."""

    def remove(self, file_id: int) -> None: ...

    def rank(self, photo: Photo, wide: bool = False) -> list[Candidate]:
        """Scored candidates for `photo`, best first; `wide` casts the net of `query`."""

    def close(self) -> None:
        """Done with the pipeline: keep what is worth keeping for the next run."""


class Scorer:
    """Scores candidate files against a photo with one method, reading their stored fingerprints.

    A candidate indexed before this method was configured has no fingerprint of it yet: it is
    fingerprinted from its file once, and the result stored, by `on_demand`.
    """

    def __init__(self, store: Store, method: Method, threshold: float, on_demand: OnDemand) -> None:
        self.store = store
        self.method = method
        self.threshold = threshold
        self.on_demand = on_demand

    def score(self, photo: Photo, lookups: Sequence[Lookup]) -> list[Candidate]:
        """Each file the lookups found, scored against the photo as that lookup turned it; best
        first. The lookups' pairs are scored together: one pass over the arrays, not one each."""
        found: list[tuple[Lookup, int, int, str, np.ndarray]] = []
        known = self.store.fingerprints_of([i for look in lookups for i in look.ids], self.method.key)
        for look in lookups:
            for file_id, distance in zip(look.ids, look.distances, strict=True):
                path, data = known.get(file_id, (None, None))
                if path is None or path == photo.path:
                    continue
                theirs = self.stored(file_id, path, data)
                if theirs is not None:
                    found.append((look, file_id, distance, path, theirs))
        others = [f[4] for f in found]
        if len(lookups) == 1:
            scores = self.method.compare_many(lookups[0].mine, others)
        else:
            scores = self.method.compare_pairs([f[0].mine for f in found], others)
        name = self.method.name
        out = [Candidate(file_id, path, score, distance, score >= self.threshold, name, look.transform)
               for (look, file_id, distance, path, _), score in zip(found, scores, strict=True)]
        out.sort(key=lambda c: (-c.score, c.distance, c.file_id))
        return out

    def stored(self, file_id: int, path: str, data: bytes | None = None) -> np.ndarray | None:
        """The file's fingerprint: `data` when the caller read it already, else from the store,
        else made from the file (`OnDemand`)."""
        if data is None:
            data = self.on_demand.stored(file_id, path, self.method)
        return None if data is None else self.method.from_bytes(data)
