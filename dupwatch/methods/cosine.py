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

import numpy as np
from PIL import Image

from dupwatch.methods.base import Method, small_gray

STORED = 32
COMPARED = 24
ZOOMS = (0.0, 0.025, 0.05, 0.075)


DARK, LIGHT = 20, 235  # grey levels at or past which a cell shared by both images is ignored
MIN_CELLS = COMPARED * COMPARED // 10  # fewer cells left than this: nothing to compare


def _cells(gray: Image.Image, zoom: float) -> np.ndarray:
    lo, hi = STORED * zoom, STORED * (1.0 - zoom)
    small = gray.resize((COMPARED, COMPARED), Image.Resampling.BILINEAR, box=(lo, lo, hi, hi))
    return np.asarray(small, dtype=np.float32).ravel()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    keep = ~(((a <= DARK) & (b <= DARK)) | ((a >= LIGHT) & (b >= LIGHT)))
    if np.count_nonzero(keep) < MIN_CELLS:
        return 0.0
    a, b = a[keep] - a[keep].mean(), b[keep] - b[keep].mean()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    # A flat image has no pattern to compare, and scores 0 against anything.
    return float(a @ b) / norm if norm > 1e-6 else 0.0


class Cosine(Method):
    name = "cosine"
    summary = "cosine of mean-centred 32×32 luminance, shared flat cells left out, best of 4 zooms"
    default_threshold = 0.93
    shape = (STORED, STORED)

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return np.asarray(small_gray(image, STORED), dtype=np.uint8)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        ga, gb = Image.fromarray(a, "L"), Image.fromarray(b, "L")
        va = {z: _cells(ga, z) for z in ZOOMS}
        vb = {z: _cells(gb, z) for z in ZOOMS}
        best = max(max(_cosine(va[z], vb[0.0]), _cosine(va[0.0], vb[z])) for z in ZOOMS)
        return max(0.0, min(1.0, best))
