"""A closer look at a pair the 32×32 grid cannot tell apart: a plain field carrying one patch.

At 32×32 a star field is a black square, and a caption box, a sticker or a watermark laid over
it is all its grid holds: two different star fields under one photographer's caption have the
same grid, and the pixel cosine scores them 0.93 to 1.00. A moon in a dark sky or one small
subject on a white wall looks the same way to the grid, and so does its true copy.

So when either grid of a pair the cosine accepted has its detail in one patch only (less than
`MIN_DETAIL` beyond its densest `PATCH` of cells, `fingerprint.detail`), both files are decoded
again, small (`SIDE`), and looked at closer: their fine detail (each pixel less its 5×5 mean),
laid one on the other as the cosine lines them up (the best of its zooms, then a shift of up to
`SHIFT` pixels), is compared outside the patch the two share most. A copy agrees there: its
noise, its faint stars and its texture are the same pixels. Two star fields do not. Each photo is
looked at as its fingerprints saw it and, where the border cut took something off, whole: the
cut of a dark, plain field is as unsteady as its faint detail, and the better of the views
counts. Where the rest of either is flat (nothing there to tell), the pair stands. Photos with
detail across the frame, which is nearly every photo, are never decoded again for this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from dupwatch.candidates.base import Candidate
from dupwatch.candidates.hamming import DIHEDRAL
from dupwatch.fingerprint import MIN_DETAIL, detail, read_image, the_photo
from dupwatch.methods.cosine import ZOOMS, Cosine
from dupwatch.record import Photo
from dupwatch.store.base import Store

PATCH = 0.15  # the share of a grid one patch may cover (a caption box, a sticker, a moon)
SIDE = 128  # the closer look's grid: four times the cosine's...
SEEN = SIDE * 3 // 4  # ...compared at three quarters of it, as the cosine compares 24 of 32
SHIFT = 2  # pixels of SEEN each way the two are moved to line up
SMOOTH = 2  # fine detail is each pixel less the mean of its (2·SMOOTH + 1)² neighbourhood
FLAT = 0.25  # grey levels of fine detail under which a rest holds nothing to tell
AGREE = 0.75  # a copy's rests agree at 0.91 or more, two star fields' at 0.63 or less (docs)
DECODED = 256  # the short side the files are decoded at, before the look's own resize

TURNS: dict[str, Callable[[np.ndarray], np.ndarray]] = dict(DIHEDRAL)


def weak(grid: np.ndarray) -> bool:
    """Whether a cosine grid (32×32 grey) holds its detail in one patch only."""
    return detail(grid, PATCH) < MIN_DETAIL


def agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float | None:
    """How far the fine detail of two photos agrees outside the patch they share most: the best
    of their views (`fine`) laid one on the other; None when the rest is flat in every one."""
    found = [agreed for x in a for y in b if (agreed := _agreement(x, y)) is not None]
    return max(found) if found else None


def fine(path: str) -> list[np.ndarray] | None:
    """The photo at `path` as the closer look sees it, squeezed to SIDE×SIDE grey: as its
    fingerprints saw it (upright, off its canvas or borders), and whole as the file holds it when
    that differs (the border cut of a plain dark field is as unsteady as its faint detail: a
    half-size copy of a star field keeps a strip its original lost). None when it cannot be read
    now."""
    whole = read_image(path, DECODED, grey=True)
    if whole is None:
        return None
    seen, _ = the_photo(whole, DECODED)
    return [_small(seen), *([_small(whole)] if seen.size != whole.size else [])]


def _small(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32)


def _agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """`agreement` of one view of each, lined up as well as the cosine's zooms and a small shift
    allow."""
    zoomed = {(side, z): _detail(_zoomed(image, zoom)) for side, image in ((0, a), (1, b))
              for z, zoom in enumerate(ZOOMS)}
    pairs = [(z, 0) for z in range(len(ZOOMS))] + [(0, z) for z in range(1, len(ZOOMS))]
    za, zb = max(pairs, key=lambda p: _cosine(zoomed[0, p[0]], zoomed[1, p[1]]))
    x, y = zoomed[0, za], zoomed[1, zb]
    m = SHIFT
    inner = y[m:SEEN - m, m:SEEN - m]
    shifted = (x[m + dy:SEEN - m + dy, m + dx:SEEN - m + dx]
               for dy in range(-m, m + 1) for dx in range(-m, m + 1))
    x = max(shifted, key=lambda s: _cosine(s, inner))
    return _rest(x, inner)


class CloserLook:
    """The matching stage: cosine acceptances of weak pairs, looked at closer."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cosine = Cosine()
        self._fine: dict[str, list[np.ndarray] | None] = {}  # of the photo being confirmed

    def confirm(self, photo: Photo, ranked: list[Candidate]) -> list[Candidate]:
        self._fine.clear()  # files may change between photos
        accepted = [c.duplicate and c.method == "cosine" for c in ranked]
        if not any(accepted):
            return ranked
        mine = photo.fingerprints.get(self._cosine.key)
        mine_weak = mine is not None and weak(self._cosine.from_bytes(mine))
        return [self._checked(photo, c, mine_weak) if ok else c
                for c, ok in zip(ranked, accepted, strict=True)]

    def _checked(self, photo: Photo, candidate: Candidate, mine_weak: bool) -> Candidate:
        """`candidate`, kept unless it is weak and looked at closer disagrees; `mine_weak`: the
        photo's own grid is weak."""
        if not mine_weak:
            theirs = self._store.fingerprint(candidate.file_id, self._cosine.key)
            if theirs is None or not weak(self._cosine.from_bytes(theirs)):
                return candidate
        a, b = self._image(photo.path), self._image(candidate.path)
        if a is None or b is None:
            return candidate
        if candidate.transform is not None:  # the photo's grid was turned to meet theirs
            a = [np.ascontiguousarray(TURNS[candidate.transform](view)) for view in a]
        agreed = agreement(a, b)
        if agreed is None or agreed >= AGREE:
            return candidate
        # Scored by what the closer look saw: under every grey zone, so that no later stage
        # takes the pair up again on the caption they share.
        return replace(candidate, score=max(agreed, 0.0), duplicate=False)

    def _image(self, path: str) -> list[np.ndarray] | None:
        if path not in self._fine:
            self._fine[path] = fine(path)
        return self._fine[path]


def _zoomed(image: np.ndarray, zoom: float) -> np.ndarray:
    """`image` less `zoom` of each side, at SEEN×SEEN (as the cosine zooms its grid)."""
    lo, hi = SIDE * zoom, SIDE * (1.0 - zoom)
    small = Image.fromarray(image, "F").resize((SEEN, SEEN), Image.Resampling.BILINEAR, box=(lo, lo, hi, hi))
    return np.asarray(small, dtype=np.float32)


def _detail(image: np.ndarray) -> np.ndarray:
    """Each pixel less the mean of its neighbourhood: what is left is edges, texture, noise."""
    out: np.ndarray = image - _around(image, SMOOTH)
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / norm if norm > 1e-6 else 0.0


def _rest(a: np.ndarray, b: np.ndarray) -> float | None:
    """The cosine of `a` and `b` outside the patch (PATCH of the pixels, with most agreement
    around them) where they agree most; None when either is flat there."""
    a, b = a - a.mean(), b - b.mean()
    shared = np.abs(a / (a.std() + 1e-9) * b / (b.std() + 1e-9))
    shared = _around(shared, 4)
    rest = shared < np.quantile(shared, 1.0 - PATCH)
    ra, rb = a[rest] - a[rest].mean(), b[rest] - b[rest].mean()
    if min(float(ra.std()), float(rb.std())) < FLAT:
        return None
    return float((ra * rb).sum() / np.sqrt((ra * ra).sum() * (rb * rb).sum()))


def _around(image: np.ndarray, r: int) -> np.ndarray:
    """Each pixel as the mean of its (2r + 1)² neighbourhood."""
    k = 2 * r + 1
    padded = np.pad(image.astype(np.float64), r, mode="edge")  # sums of a whole image: float32 rounds
    total = np.pad(padded.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    out: np.ndarray = (total[k:, k:] - total[:-k, k:] - total[k:, :-k] + total[:-k, :-k]) / (k * k)
    return out
