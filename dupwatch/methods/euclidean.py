"""Euclidean (L2) distance between equal-size RGB pixel vectors, as in the article.

Both images are resized to 16×16 RGB with values in [0, 1], so the largest possible distance is
sqrt(768). Score = 1 - distance / sqrt(768). Unlike cosine it is not blind to brightness: a
25 % brighter copy loses about 0.1.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from dupwatch.methods.base import Method, small_rgb

SIZE = 16


class Euclidean(Method):
    name = "euclidean"
    summary = "L2 distance of 16×16 RGB pixel vectors (numpy.linalg.norm), 1 - d / d_max"
    default_threshold = 0.90
    strict_threshold, loose_threshold = 0.97, 0.87  # plain copies ≥ 0.973; strangers ≤ 0.869
    needs_colour = True
    shape = (SIZE, SIZE, 3)

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return np.asarray(small_rgb(image, SIZE), dtype=np.uint8)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        va = a.astype(np.float32).ravel() / 255.0
        vb = b.astype(np.float32).ravel() / 255.0
        distance = float(np.linalg.norm(va - vb))
        return max(0.0, 1.0 - distance / math.sqrt(va.size))
