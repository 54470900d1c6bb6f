"""Robust mode's candidates: the nearest CNN embeddings, whatever the hash says.

A photo turned by 25°, cropped to 60 % or seen in perspective has a hash unlike its original's,
but its EfficientNet embedding is still among the original's nearest neighbours. The k nearest
are scored by CNN cosine against `robust.threshold`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from dupwatch.candidates.base import Candidate
from dupwatch.index.vectors import make_vector_index
from dupwatch.methods.cnn import CnnMethod
from dupwatch.record import Photo
from dupwatch.store.base import Store


class NeighbourSearch:
    def __init__(self, store: Store, method: CnnMethod, threshold: float, k: int,
                 index: Literal["auto", "numpy", "usearch"],
                 distance: Callable[[Photo, int], int]) -> None:
        self.store = store
        self.method = method
        self.threshold = threshold
        self.k = k
        self._distance = distance
        ids, blobs = store.fingerprints(method.key)
        vectors = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(ids), *method.shape)
        empty = make_vector_index(index, method.shape[0], len(ids))
        self.index = type(empty).of(ids, vectors) if len(ids) else empty

    def _vector(self, photo: Photo) -> np.ndarray:
        return self.method.from_bytes(photo.fingerprints[self.method.key])

    def add(self, file_id: int, photo: Photo) -> None:
        self.index.add(file_id, self._vector(photo))

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
