"""The grey zone: candidates a cheap score can neither accept nor reject go to geometry.

A search scores its candidates cheaply (pixel cosine, CNN cosine) and accepts those at its
threshold. Below that, down to `geometry.verify_from` of the same score, a candidate may still be
a crop, a rotation or a perspective change of the photo, or a different photo of a similar
scene: local features and a homography decide (`methods/geometry.py`). Below the zone the cheap
score alone rejects, which is also the floor that keeps a repetitive façade from being confirmed
on geometry alone.

Features are read from the cache. A file indexed without them (the default mode computes them
only when a pair lands in the zone) is fingerprinted from its file once and stored, and so is
the new photo, stored with it when it is indexed (both by `OnDemand`).

A small crop (40 % of each side) carries few of its original's stored keypoints, found at a scale
where its detail is lost. When a first fit has a few inliers and puts one photo inside a small
part of the other, the larger one is decoded again, larger, and its keypoints found again on that
part alone (`judged`, `geometry.closer`); `dupwatch compare` looks closer the same way.

A homography fits one plane, and a CNN embedding one kind of scene: two shots of a façade from
two places, or two pages of one document, pass either. So a pair geometry confirms, and a pair
robust mode's CNN accepts, must also be one capture: the two photos, laid one on the other, agree
pixel for pixel (`geometry.same_capture`), and their matches fit one homography both ways, not
roughly as another shot's do (parallax). The pixels are decoded again from both files, small, as
the fingerprints were made; nothing more is stored.

The pixel cosine at 32×32 passes two shots taken steps apart too (up to 0.98). Its acceptances
short of near certainty are checked for parallax only, and only between photos large enough for
their keypoints to be found at full detail (DETECT on the long side): laid one on the other, the
pixels of a vignetted or watermarked copy of a bright, plain photo (a product on white, a
high-key shot) agree too little to tell, and a small copy's keypoints, found at its own size,
stray from the homography as far as another shot's. Where robust mode's CNN does not recognise a
cosine acceptance (a small crop of a smooth sky against another sky), the pair is checked in
full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
from PIL import Image

from dupwatch.candidates.base import Candidate, Scorer
from dupwatch.fingerprint import read_image, the_photo
from dupwatch.methods import geometry
from dupwatch.methods.base import Method
from dupwatch.methods.geometry import Features, Geometry, Verdict
from dupwatch.ondemand import OnDemand
from dupwatch.record import Photo
from dupwatch.store.base import Store

# Acceptances by these methods must also be one capture (see above)...
DOUBTED = frozenset({"cnn"})
# ...and so must a cosine acceptance robust mode's CNN scores under this. Every edit the cosine
# accepts on the shared photos scores above it (a watermark, sepia and grayscale the least), a
# small crop of one photo and another photo below (docs/robust.md).
COSINE_DOUBT = 0.5
# A cosine acceptance under this score is checked for parallax: at 32×32 two shots taken steps
# apart score up to 0.98 (docs/robust.md).
COSINE_SURE = 0.99


class GeometryCheck:
    def __init__(self, store: Store, threshold: float, checks: int, verify_from: Mapping[str, float],
                 on_demand: OnDemand, cnn: Method | None = None) -> None:
        """`cnn`: robust mode's, to doubt the cosine's acceptances it does not recognise."""
        self.method = Geometry()
        self.threshold = threshold
        self.checks = checks
        self.verify_from = dict(verify_from)
        self._scorer = Scorer(store, self.method, threshold, on_demand)
        self._store = store
        self._cnn = cnn
        self._on_demand = on_demand
        self._pixels: dict[str, np.ndarray | None] = {}  # grey images of the photo being confirmed

    def grey(self, candidate: Candidate) -> bool:
        floor = self.verify_from.get(candidate.method)
        return (not candidate.duplicate and floor is not None and candidate.score >= floor
                and candidate.geometry is None)  # not judged already

    def confirm(self, photo: Photo, ranked: list[Candidate]) -> list[Candidate]:
        """`ranked` with its doubted acceptances checked as one capture, and when none is left,
        its best grey-zone candidates replaced by geometry's verdict on them."""
        self._pixels.clear()  # files may change between photos
        ranked = [self._checked(photo, c) if c.duplicate else c for c in ranked]
        if any(c.duplicate for c in ranked):
            return ranked
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
        verdict = judged(photo.path, candidate.path, mine, theirs, self.threshold)
        found = replace(candidate, score=verdict.score, duplicate=verdict.score >= self.threshold,
                        method=self.method.name, geometry=verdict.to_json())
        if not found.duplicate:
            return found
        if self._parallax(verdict, theirs, mine):  # another shot of one scene
            return replace(found, score=0.0, duplicate=False)
        agreement = self._agreement(photo, candidate, mine, theirs, verdict)
        if agreement is None:
            return found
        shown = {**verdict.to_json(), "capture": round(agreement, 3)}
        if agreement < geometry.MIN_CAPTURE:  # one scene, another capture: not a duplicate
            return replace(found, score=0.0, duplicate=False, geometry=shown)
        return replace(found, geometry=shown)

    def _checked(self, photo: Photo, candidate: Candidate) -> Candidate:
        """An acceptance as the checks above leave it."""
        if candidate.method in DOUBTED or self._cnn_doubts(photo, candidate):
            return self.capture(photo, candidate)
        sure = candidate.method != "cosine" or candidate.score >= COSINE_SURE
        if not sure and self._detailed(photo, candidate):
            return self.capture(photo, candidate, pixels=False)
        return candidate

    def _detailed(self, photo: Photo, candidate: Candidate) -> bool:
        """Whether both photos are large enough for their keypoints to be found at full detail."""
        theirs = self._store.file_view(candidate.file_id)
        their_side = 0 if theirs is None else max(theirs.width or 0, theirs.height or 0)
        return min(max(photo.width, photo.height), their_side) >= geometry.DETECT

    def _cnn_doubts(self, photo: Photo, candidate: Candidate) -> bool:
        if candidate.method != "cosine" or self._cnn is None:
            return False
        cnn = self._cnn
        theirs = self._on_demand.stored(candidate.file_id, candidate.path, cnn)
        if theirs is None or cnn.key not in photo.fingerprints:
            return False
        return cnn.compare(cnn.from_bytes(photo.fingerprints[cnn.key]), cnn.from_bytes(theirs)) < COSINE_DOUBT

    def capture(self, photo: Photo, candidate: Candidate, pixels: bool = True) -> Candidate:
        """`candidate`, an acceptance, kept only if the two photos are one capture: their matches
        show no parallax, and (with `pixels`) their pixels agree."""
        mine = self._features(photo)
        theirs = self._scorer.stored(candidate.file_id, candidate.path)
        if mine is None or theirs is None:
            return candidate
        verdict = self.method.verdict(mine, theirs)
        if self._parallax(verdict, theirs, mine):
            return replace(candidate, duplicate=False, geometry=verdict.to_json())
        if not pixels:
            return candidate
        agreement = self._agreement(photo, candidate, mine, theirs, verdict)
        if agreement is None or agreement >= geometry.MIN_CAPTURE:
            return candidate
        shown = {**verdict.to_json(), "capture": round(agreement, 3)}
        return replace(candidate, duplicate=False, geometry=shown)

    def _parallax(self, verdict: Verdict, theirs: np.ndarray, mine: np.ndarray) -> bool:
        """Whether the matches stray from one homography as another shot's do (parallax), one way
        (`verdict`, of mine on theirs) or the other: the matches of one photo to the other are
        not those of the other to the one, and another shot's parallax may show in either."""
        if verdict.score > 0 and verdict.residual > geometry.MAX_RESIDUAL:
            return True
        back = self.method.verdict(theirs, mine)
        return back.score > 0 and back.residual > geometry.MAX_RESIDUAL

    def _agreement(self, photo: Photo, candidate: Candidate, mine: np.ndarray, theirs: np.ndarray,
                   verdict: Verdict) -> float | None:
        """`geometry.same_capture` of the two photos, under geometry's homography or laid whole
        one on the other; None when it cannot be told."""
        a, b = self._grey(photo.path), self._grey(candidate.path)
        if a is None or b is None:
            return None
        fa, fb = Features.unpack(mine), Features.unpack(theirs)
        frames = (fa.width, fa.height), (fb.width, fb.height)
        return geometry.same_capture(a, b, geometry.alignments(fa, fb, verdict), *frames)

    def _grey(self, path: str) -> np.ndarray | None:
        """The photo as its fingerprints saw it (upright, off its canvas or borders), in grey at
        CAPTURE_SIDE; None when it cannot be read now."""
        if path not in self._pixels:
            image = decoded(path, self.method.needs_size)
            if image is None:
                self._pixels[path] = None
                return None
            grey = image.convert("L")
            scale = geometry.CAPTURE_SIDE / max(grey.size)
            grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                               Image.Resampling.BOX)
            self._pixels[path] = np.asarray(grey)
        return self._pixels[path]

    def _features(self, photo: Photo) -> np.ndarray | None:
        data = self._on_demand.of(photo, self.method)
        return None if data is None else self.method.from_bytes(data)


def decoded(path: str, size: int) -> Image.Image | None:
    """The photo as its fingerprints saw it (upright, off its canvas or borders), decoded with
    its short side at `size` or more; None when it cannot be read now."""
    image = read_image(path, size)
    return None if image is None else the_photo(image, size)[0]


def judged(a_path: str, b_path: str, a: np.ndarray, b: np.ndarray, threshold: float) -> Verdict:
    """Geometry's verdict on photos a and b (their geometry fingerprints); when it falls short of
    `threshold`, the better of it and the verdict with the larger photo's keypoints found again
    where the other one lies (`geometry.closer`)."""
    fa, fb = Features.unpack(a), Features.unpack(b)
    verdict = geometry.verify(fa, fb)
    if verdict.score >= threshold:
        return verdict
    look = geometry.closer(fa, fb, verdict)
    if look is None:
        return verdict
    path, frame = (a_path, fa) if look.on_a else (b_path, fb)
    image = decoded(path, look.size(frame))
    if image is None:
        return verdict
    found = geometry.extract_box(image, frame, look.box)
    again = geometry.verify(found, fb) if look.on_a else geometry.verify(fa, found)
    return again if again.score > verdict.score else verdict
