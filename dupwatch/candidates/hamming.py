"""Candidates by Hamming distance of the 64-bit hash, as taken and turned 90°, 180° or mirrored.

The hash is an 8×8 grid of bits and the pixel fingerprints are square grids, so turning or
mirroring a photo turns or mirrors them the same way: the eight dihedral variants of a photo
cost eight cheap passes over the index and no new decode. The turned pixel fingerprint confirms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from dupwatch.candidates.base import Candidate, Lookup, Scorer
from dupwatch.index.hamming import HammingIndex
from dupwatch.methods.hashes import HashMethod
from dupwatch.record import Photo
from dupwatch.store.base import Store

Grid = Callable[[np.ndarray], np.ndarray]

# The seven turned searches run for every photo that has no duplicate as it is, so they look
# nearer and at fewer candidates: a turned copy is a plain copy turned, as near as one (the
# wider `max_distance` is for edits: vignettes, overlays, crops).
TURNED_DISTANCE = 12
TURNED_LIMIT = 16

# (how the new photo was turned from the old one, the turn that undoes it). Searching with the
# undone hash and fingerprint finds the original. np.rot90 turns counter-clockwise, like Pillow.
DIHEDRAL: list[tuple[str, Grid]] = [
    ("rotate-90-ccw", lambda a: np.rot90(a, 3, axes=(0, 1))),
    ("rotate-180", lambda a: np.rot90(a, 2, axes=(0, 1))),
    ("rotate-90-cw", lambda a: np.rot90(a, 1, axes=(0, 1))),
    ("mirror", lambda a: a[:, ::-1]),
    ("flip", lambda a: a[::-1, :]),
    ("transpose", lambda a: np.swapaxes(a, 0, 1)),
    ("transverse", lambda a: np.swapaxes(np.rot90(a, 2, axes=(0, 1)), 0, 1)),
]


def turned_hashes(value: int, grids: Sequence[Grid]) -> list[int]:
    """The hash `value` turned by each of `grids`, in one pass."""
    bits = np.unpackbits(np.array([value], dtype=">u8").view(np.uint8)).reshape(8, 8)
    turned = np.stack([grid(bits) for grid in grids])
    return [int(v) for v in np.packbits(turned.reshape(len(grids), 64), axis=1).view(">u8").ravel()]


class HammingSearch:
    def __init__(self, store: Store, hashing: HashMethod, scorer: Scorer, max_distance: int, limit: int,
                 turned: Scorer | None, saved: bool = False) -> None:
        self.hashing = hashing
        self.scorer = scorer
        self.max_distance = max_distance
        self.limit = limit
        self.turned = turned  # scores turned copies; None: do not look for them
        self.store = store
        self.keys: tuple[str, ...] = (hashing.key,)
        self.index = _load(store, hashing.key, saved)
        self.changed = False  # since it was loaded: the index saved beside the store is behind

    def value(self, photo: Photo) -> int:
        return int(self.hashing.from_bytes(photo.fingerprints[self.hashing.key]))

    def add(self, file_id: int, fingerprints: Mapping[str, bytes]) -> None:
        self.index.add(file_id, int(self.hashing.from_bytes(fingerprints[self.hashing.key])))
        self.changed = True

    def remove(self, file_id: int) -> None:
        self.index.remove(file_id)
        self.changed = True

    def close(self) -> None:
        """A run that changed the hashes (a scan) saves them for the next query, read back from
        the store once its writes are committed: another process may have written some too,
        and the stamp must be of exactly the hashes saved."""
        if self.changed and self.store.beside(_name(self.hashing.key)) is not None:
            self.store.commit()
            _load(self.store, self.hashing.key, False)
            self.changed = False

    def distance(self, photo: Photo, file_id: int) -> int:
        other = self.index.value(file_id)
        if other is None:
            return -1
        return int(np.bitwise_count(np.uint64(self.value(photo)) ^ np.uint64(other)))

    def rank(self, photo: Photo, wide: bool = False) -> list[Candidate]:
        limit, max_distance = (max(256, self.limit), 64) if wide else (self.limit, self.max_distance)
        value = self.value(photo)
        ranked = self.scorer.score(photo, [self._lookup(self.scorer, photo, value, max_distance, limit)])
        if self.turned is not None and not any(c.duplicate for c in ranked):
            distance, most = min(self.max_distance, TURNED_DISTANCE), min(self.limit, TURNED_LIMIT)
            values = turned_hashes(value, [grid for _, grid in DIHEDRAL])
            lookups = [self._lookup(self.turned, photo, v, distance, most, turn)
                       for turn, v in zip(DIHEDRAL, values, strict=True)]
            ranked += [c for c in self.turned.score(photo, lookups) if c.duplicate]
            ranked.sort(key=lambda c: (not c.duplicate, -c.score, c.distance, c.file_id))
        return ranked

    def _lookup(self, scorer: Scorer, photo: Photo, value: int, max_distance: int, limit: int,
                turn: tuple[str, Grid] | None = None) -> Lookup:
        """The files within `max_distance` of the hash `value` (the photo's, turned by `turn`)."""
        ids, distances = self.index.search(value, max_distance, limit)
        ids, distances = ids.tolist(), distances.tolist()
        mine = scorer.method.from_bytes(photo.fingerprints[scorer.method.key])
        if turn is None:
            return Lookup(mine, ids, distances)
        return Lookup(np.ascontiguousarray(turn[1](mine)), ids, distances, turn[0])


def _load(store: Store, key: str, saved: bool) -> HammingIndex:
    """The index of the store's hashes of `key`. With `saved`, the one saved beside the store
    while no hash has changed since (`Catalog.hash_stamp`); else, and when there is none, read
    from the store, and saved for the next query unless it was saved with that stamp already."""
    path = store.beside(_name(key))
    if saved and path is not None and (stamp := store.hash_stamp()) is not None:
        index = HammingIndex.load(path, stamp)
        if index is not None:
            return index
    hashes = store.hashes(key)
    index = HammingIndex.of(hashes.ids, hashes.values)
    if path is not None and hashes.stamp is not None and not HammingIndex.saved_with(path, hashes.stamp):
        index.save(path, hashes.stamp)
    return index


def _name(key: str) -> str:
    return f"hamming.{key.replace('/', '-')}"
