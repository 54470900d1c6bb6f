"""CNN feature similarity: EfficientNet features, compared by cosine or by Euclidean distance.

The article's fifth method. `prepare` shrinks a photo to 224×224 RGB, and `fingerprint_batch`
embeds many at once: in a scan each worker process does both for its own chunk of photos
(see `fingerprint_files`). The model is loaded on first use, once per process, and torch is
never imported unless a CNN method is configured.

Both methods share one stored embedding (1280 float16, unit length): `cnn` scores it by cosine,
max(0, cos); `cnn-euclidean` by the distance d between the unit vectors, 1 - d / 2. For unit
vectors d² = 2 - 2·cos, so the two rank pairs identically; they differ in how a score reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from dupwatch.methods import efficientnet
from dupwatch.methods.base import Method


class CnnMethod(Method):
    summary = "EfficientNet features (average-pooled, unit length)"
    needs_size = efficientnet.INPUT
    needs_colour = True
    dtype = np.float16
    shape = (efficientnet.FEATURES,)
    batched = True

    @property
    def key(self) -> str:
        # One embedding serves both scores; a different backbone or weights file is another key.
        weights = "" if self.options.cnn_weights is None else f"/{self.options.cnn_weights}"
        return f"cnn/{self.version}/{self.options.cnn_model}{weights}"

    def prepare(self, image: Image.Image) -> np.ndarray:
        size = (efficientnet.INPUT, efficientnet.INPUT)
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)

    def fingerprint_batch(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        options = self.options
        embedder = efficientnet.load(options.cnn_model, options.cnn_weights, options.cnn_threads)
        out: list[np.ndarray] = []
        step = self.options.cnn_batch_size
        for start in range(0, len(prepared), step):
            vectors = embedder.embed(np.stack(prepared[start:start + step]))
            out.extend(vectors.astype(np.float16))
        return out

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return self.fingerprint_batch([self.prepare(image)])[0]

    @staticmethod
    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        va, vb = a.astype(np.float32), b.astype(np.float32)
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return float(va @ vb) / norm if norm > 0 else 0.0


class Cnn(CnnMethod):
    name = "cnn"
    summary = "EfficientNet features, cosine similarity"
    default_threshold = 0.80

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return max(0.0, min(1.0, self.cosine(a, b)))


class CnnEuclidean(CnnMethod):
    name = "cnn-euclidean"
    summary = "EfficientNet features, Euclidean distance of unit vectors, 1 - d / 2"
    default_threshold = 1.0 - float(np.sqrt(2 - 2 * 0.80)) / 2  # the same pairs as cnn at 0.80

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * self.cosine(a, b))))
        return max(0.0, 1.0 - distance / 2.0)
