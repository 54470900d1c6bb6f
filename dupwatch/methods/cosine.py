"""Cosine similarity of small luminance pixel vectors, tolerant of small border crops.

Each vector has its mean removed before the cosine, which makes the score blind to brightness
offsets and contrast scaling (it is then the Pearson correlation of the two images). A plain
cosine of raw, all-positive pixel values scores any two photos above 0.9, so it cannot tell a
copy from a stranger; the centred one can.

The fingerprint is 32×32 grey levels. A pair is compared at 24×24 several times, each time with
one side zoomed in by 0, 2.5, 5 or 7.5 % per border, and the best cosine wins: a copy with its
borders trimmed then lines up with its original. Score = max(0, best cosine).

Cells that are near-black or near-white in *both* images are left out of the cosine: shared
padding, borders and blown-out sky say nothing about whether two photos are the same, yet two
different photos rotated by 25° (black corners) scored up to 0.975 with them and 0.926 without.

Measured on the 104 shared photos (`benchmarks/accuracy.py`): distinct photos score at most 0.90;
every re-encode, resize, EXIF rotation, 5 % crop, ±25 % brightness/contrast, grey, blur, noise
and text overlay scored at least 0.96. Default threshold: 0.93, in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
from PIL import Image

from dupwatch.methods.base import Method, small_gray

STORED = 32
COMPARED = 24
ZOOMS = (0.0, 0.025, 0.05, 0.075)
DARK, LIGHT = 20, 235  # grey levels at or past which a cell shared by both images is ignored
MIN_CELLS = COMPARED * COMPARED // 10  # fewer cells left than this: nothing to compare


@cache
def _zoom_maps() -> np.ndarray:
    """Each zoom's bilinear crop-and-resize along one axis, as a matrix (zooms, 24, 32).

    Pillow resizes one axis, then the other, so a zoomed image is `R @ G @ R.T`. Each column
    of R is read off Pillow itself (an image whose column k is 1), and a whole batch of
    candidates is then zoomed by two small matrix products instead of Pillow calls per image.
    """
    maps = np.zeros((len(ZOOMS), COMPARED, STORED), dtype=np.float32)
    for k in range(STORED):
        column = np.zeros((STORED, STORED), dtype=np.float32)
        column[:, k] = 1.0
        image = Image.fromarray(column, "F")
        for z, zoom in enumerate(ZOOMS):
            lo, hi = STORED * zoom, STORED * (1.0 - zoom)
            small = image.resize((COMPARED, COMPARED), Image.Resampling.BILINEAR, box=(lo, lo, hi, hi))
            maps[z, :, k] = np.asarray(small, dtype=np.float32)[0]
    return maps


def _cosines(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Masked, centred cosine of each row of `x` with the same row of `y` (both n × cells)."""
    keep = ~(((x <= DARK) & (y <= DARK)) | ((x >= LIGHT) & (y >= LIGHT)))
    count = np.count_nonzero(keep, axis=1)
    safe = np.maximum(count, 1)
    xc = np.where(keep, x - (np.where(keep, x, 0).sum(axis=1) / safe)[:, None], 0.0)
    yc = np.where(keep, y - (np.where(keep, y, 0).sum(axis=1) / safe)[:, None], 0.0)
    xx, yy = (xc * xc).sum(axis=1), (yc * yc).sum(axis=1)
    norm = np.sqrt(xx * yy)
    # A flat image (spread under 0.1 grey level: rounding noise) has no pattern to compare,
    # and scores 0 against anything.
    ok = (count >= MIN_CELLS) & (xx > 0.01 * safe) & (yy > 0.01 * safe)
    return np.where(ok, (xc * yc).sum(axis=1) / np.where(ok, norm, 1.0), 0.0)


class Cosine(Method):
    name = "cosine"
    summary = "cosine of mean-centred 32×32 luminance, shared flat cells left out, best of 4 zooms"
    default_threshold = 0.93
    strict_threshold, loose_threshold = 0.97, 0.91  # plain copies ≥ 0.976; strangers ≤ 0.902
    shape = (STORED, STORED)

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return np.asarray(small_gray(image, STORED), dtype=np.uint8)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return self.compare_many(a, [b])[0]

    def compare_many(self, a: np.ndarray, others: Sequence[np.ndarray]) -> list[float]:
        if not others:
            return []
        maps = _zoom_maps()
        # cells[z, i]: image i zoomed by ZOOMS[z], as a vector; image 0 is `a`.
        stack = np.stack([a, *others]).astype(np.float32)
        cells = np.stack([(r @ stack @ r.T).reshape(len(stack), -1) for r in maps])
        mine, theirs = cells[:, :1], cells[:, 1:]
        n = len(others)
        best = np.full(n, -1.0)
        for z in range(len(ZOOMS)):
            best = np.maximum(best, _cosines(np.repeat(mine[z], n, axis=0), theirs[0]))
            best = np.maximum(best, _cosines(np.repeat(mine[0], n, axis=0), theirs[z]))
        return [float(s) for s in np.clip(best, 0.0, 1.0)]
