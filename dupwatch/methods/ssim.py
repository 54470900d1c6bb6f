"""Structural similarity (SSIM-PIL's compare_ssim, on the CPU) of 64×64 luminance images.

SSIM is already 1 for identical images; negative values (anti-correlated structure) are clipped
to 0 so the score stays in [0, 1].
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from SSIM_PIL import compare_ssim

from dupwatch.methods.base import Method, small_gray

SIZE = 64


class Ssim(Method):
    name = "ssim"
    summary = "structural similarity (SSIM-PIL compare_ssim, GPU=False) of 64×64 luminance"
    default_threshold = 0.75
    shape = (SIZE, SIZE)

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return np.asarray(small_gray(image, SIZE), dtype=np.uint8)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        score = compare_ssim(Image.fromarray(a, "L"), Image.fromarray(b, "L"), GPU=False)
        return max(0.0, min(1.0, float(score)))
