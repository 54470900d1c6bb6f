"""The grey zone: candidates a cheap score can neither accept nor reject go to geometry.

A search scores its candidates cheaply (pixel cosine, CNN cosine) and accepts those at its
threshold. Below that, down to `geometry.verify_from` of the same score, a candidate may still be
a crop, a rotation or a perspective change of the photo, or a different photo of a similar
scene: local features and a homography decide (`methods/geometry.py`). Below the zone the cheap
score alone rejects, which is also the floor that keeps a repetitive façade from being confirmed
on geometry alone.

Features are read from the cache. A file indexed without them (the default mode computes them
only when a pair lands in the zone) is fingerprinted from its file once and stored, and so is
the new photo: it travels on in `photo.fingerprints` and is stored with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from dupwatch.candidates.base import Candidate, Scorer
from dupwatch.errors import SkipFile
from dupwatch.fingerprint import Plan, fingerprint_now
from dupwatch.methods.geometry import Geometry
from dupwatch.record import Photo
from dupwatch.store.base import Store


class GeometryCheck:
    def __init__(self, store: Store, threshold: float, checks: int, verify_from: Mapping[str, float]) -> None:
        self.method = Geometry()
        self.threshold = threshold
        self.checks = checks
        self.verify_from = dict(verify_from)
        self._scorer = Scorer(store, self.method, threshold)
        self._plan = Plan((self.method.name,), self.method.options)

    def grey(self, candidate: Candidate) -> bool:
        floor = self.verify_from.get(candidate.method)
        return not candidate.duplicate and floor is not None and candidate.score >= floor

    def confirm(self, photo: Photo, ranked: list[Candidate]) -> list[Candidate]:
        """`ranked` with its best grey-zone candidates replaced by geometry's verdict on them."""
        out, checked = [], 0
        for c in ranked:
            if checked < self.checks and self.grey(c):
                checked += 1
                verified = self.verify(photo, c)
                if verified is not None:
                    c = verified
            out.append(c)
        return out

    def verify(self, photo: Photo, candidate: Candidate) -> Candidate | None:
        mine = self._features(photo)
        theirs = self._scorer.stored(candidate.file_id, candidate.path)
        if mine is None or theirs is None:
            return None
        verdict = self.method.verdict(mine, theirs)
        return replace(candidate, score=verdict.score, duplicate=verdict.score >= self.threshold,
                       method=self.method.name, geometry=verdict.to_json())

    def _features(self, photo: Photo) -> np.ndarray | None:
        key = self.method.key
        if key not in photo.fingerprints:
            if not os.path.exists(photo.path):
                return None
            try:
                photo.fingerprints[key] = fingerprint_now(photo.path, self._plan).fingerprints[key]
            except SkipFile:
                return None
        return self.method.from_bytes(photo.fingerprints[key])
