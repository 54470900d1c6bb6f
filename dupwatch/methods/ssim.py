"""Structural similarity (SSIM-PIL's compare_ssim, on the CPU) of 64×64 luminance images.

SSIM is already 1 for identical images; negative values (anti-correlated structure) are clipped
to 0 so the score stays in [0, 1].

SSIM-PIL's CPU strategy is the mean over non-overlapping 7×7 tiles of the SSIM formula, looped
in Python (about 6 ms a pair here). `compare_many` computes the same tiles with numpy for one
image against many (microseconds a pair), which is what a benchmark or a batch of candidates
needs; a test holds it to compare_ssim's values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image
from SSIM_PIL import compare_ssim

from dupwatch.methods.base import Method, small_gray

SIZE = 64
TILE = 7  # compare_ssim's default tile_size
_C1, _C2 = (255 * 0.01) ** 2, (255 * 0.03) ** 2  # its constants for 8-bit values


def _tiles(images: np.ndarray) -> np.ndarray:
    """(n, SIZE, SIZE) → (n, tiles, TILE²) float64, the whole tiles only, as compare_ssim does."""
    n, side = len(images), SIZE // TILE
    cut = images[:, : side * TILE, : side * TILE].astype(np.float64)
    return cut.reshape(n, side, TILE, side, TILE).transpose(0, 3, 1, 4, 2).reshape(n, side * side, -1)


class Ssim(Method):
    name = "ssim"
    summary = "structural similarity (SSIM-PIL compare_ssim, GPU=False) of 64×64 luminance"
    default_threshold = 0.75
    strict_threshold, loose_threshold = 0.76, 0.45  # plain copies ≥ 0.764; strangers ≤ 0.448
    shape = (SIZE, SIZE)

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return np.asarray(small_gray(image, SIZE), dtype=np.uint8)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        score = compare_ssim(Image.fromarray(a, "L"), Image.fromarray(b, "L"), GPU=False)
        return max(0.0, min(1.0, float(score)))

    def compare_many(self, a: np.ndarray, others: Sequence[np.ndarray]) -> list[float]:
        if not others:
            return []
        tiles = _tiles(np.stack([a, *others]))
        means = tiles.mean(axis=2)
        centred = tiles - means[:, :, None]
        variances = (centred * centred).mean(axis=2)
        covariances = (centred[:1] * centred[1:]).mean(axis=2)
        m0, m1 = means[:1], means[1:]
        ssim = ((2 * m0 * m1 + _C1) * (2 * covariances + _C2)
                / ((m0 * m0 + m1 * m1 + _C1) * (variances[:1] + variances[1:] + _C2)))
        return [float(s) for s in np.clip(ssim.mean(axis=1), 0.0, 1.0)]
