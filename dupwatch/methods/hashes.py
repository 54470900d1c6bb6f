"""Perceptual hashes: 64 bits each, scored by Hamming distance.

imagehash's four, and `chash`, dupwatch's candidate hash: the same view of the photo as the
cosine's (a grey grid with its mean and radial profile removed), so that a vignette or a tone
curve that leaves the cosine alone does not move the hash either.

Score = 1 - distance / 64. The default threshold 0.85 accepts a distance of 9 or less.
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image

from dupwatch.methods.base import Method, median, small_gray, unwanted

BITS = 64


class HashMethod(Method):
    default_threshold = 0.85
    dtype = np.uint64
    shape = ()
    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        raise NotImplementedError

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        bits = self._hash(image).hash.flatten()
        return np.frombuffer(np.packbits(bits).tobytes(), dtype=">u8").astype(np.uint64).reshape(())

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - self.distance(a, b) / BITS

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> int:
        return int(np.bitwise_count(np.uint64(a) ^ np.uint64(b)))


class AverageHash(HashMethod):
    name = "hash"
    summary = "64-bit average hash (imagehash.average_hash), Hamming distance"
    # Plain copies ≥ 0.953, but two different photos reached 0.984: loose stays at the default.
    strict_threshold = 0.95

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.average_hash(image)


class PerceptualHash(HashMethod):
    name = "phash"
    summary = "64-bit DCT perceptual hash (imagehash.phash), Hamming distance"
    strict_threshold, loose_threshold = 0.90, 0.72  # plain copies ≥ 0.906; strangers ≤ 0.719

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.phash(image)


class DifferenceHash(HashMethod):
    name = "dhash"
    summary = "64-bit gradient hash (imagehash.dhash), Hamming distance"
    strict_threshold, loose_threshold = 0.92, 0.82  # plain copies ≥ 0.922; strangers ≤ 0.812

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.dhash(image)


class WaveletHash(HashMethod):
    name = "whash"
    summary = "64-bit Haar wavelet hash (imagehash.whash), Hamming distance"
    # Plain copies ≥ 0.938, but two different photos reached 1.0: loose stays at the default.
    strict_threshold = 0.93

    def _hash(self, image: Image.Image) -> imagehash.ImageHash:
        return imagehash.whash(image)


class CentredHash(HashMethod):
    name = "chash"
    summary = "64-bit hash: 8×8 means of 32×32 grey less its mean and radial profile, over their median"

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        grid = np.asarray(small_gray(image, 32), dtype=np.float64).ravel()
        basis = unwanted(32)
        grid -= basis @ (basis.T @ grid)
        blocks = grid.reshape(8, 4, 8, 4).mean(axis=(1, 3))
        # Over the median, not the mean: half the bits set whatever the photo, so two photos
        # that are mostly dark (or bright) are not near each other for that alone.
        bits = (blocks > median(blocks)).ravel()
        return np.frombuffer(np.packbits(bits).tobytes(), dtype=">u8").astype(np.uint64).reshape(())
