"""CNN feature similarity: EfficientNet features, compared by cosine or by Euclidean distance.

The article's fifth method. `prepare` shrinks a photo to 224×224 RGB, and `fingerprint_batch`
embeds many at once: in a scan each worker process does both for its own chunk of photos
(see `fingerprint_files`). The model is loaded on first use, once per process, and torch is
never imported unless a CNN method is configured.

A photo turned onto a black or white canvas (what a rotation tool leaves) reaches `prepare`
already turned back and cut out of it (`dupwatch/canvas.py`, for every method): otherwise the
canvas, not the photo, decides which photos look alike. What canvas is left (a shape that is not
a turned rectangle) is kept out of the average pooling (`_cell_weights`).

Both methods share one stored embedding (1280 float16, unit length): `cnn` scores it by cosine,
max(0, cos); `cnn-euclidean` by the distance d between the unit vectors, 1 - d / 2. For unit
vectors d² = 2 - 2·cos, so the two rank pairs identically; they differ in how a score reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from dupwatch.canvas import canvas
from dupwatch.methods import efficientnet
from dupwatch.methods.base import Method

CANVAS_CELL = 0.01  # share of a feature-map cell that may be canvas and still count


class CnnMethod(Method):
    summary = "EfficientNet features (average-pooled, unit length)"
    needs_size = efficientnet.INPUT
    needs_colour = True
    dtype = np.float16
    shape = (efficientnet.FEATURES,)
    batched = True
    # 2: pooled over the photo's own area when it was turned onto a canvas (see `canvas`).
    # 3: turned back and cut out of that canvas first (`dupwatch/canvas.py`).
    version = 3

    @property
    def key(self) -> str:
        # One embedding serves both scores; a different backbone or weights file is another key.
        weights = "" if self.options.cnn_weights is None else f"/{self.options.cnn_weights}"
        return f"cnn/{self.version}/{self.options.cnn_model}{weights}"

    def prepare(self, image: Image.Image) -> np.ndarray:
        """224×224 RGB and, as a fourth channel, 255 where the photo is and 0 on its canvas."""
        size = (efficientnet.INPUT, efficientnet.INPUT)
        rgb = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)
        return np.dstack([rgb, np.where(canvas(rgb), 0, 255).astype(np.uint8)])

    def fingerprint_batch(self, prepared: Sequence[np.ndarray]) -> list[np.ndarray]:
        options = self.options
        embedder = efficientnet.load(options.cnn_model, options.cnn_weights, options.cnn_threads)
        out: list[np.ndarray] = []
        step = self.options.cnn_batch_size
        for start in range(0, len(prepared), step):
            chunk = np.stack(prepared[start:start + step])
            vectors = embedder.embed(np.ascontiguousarray(chunk[..., :3]), _cell_weights(chunk[..., 3]))
            out.extend(vectors.astype(np.float16))
        return out

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return self.fingerprint_batch([self.prepare(image)])[0]

    @staticmethod
    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        va, vb = a.astype(np.float32), b.astype(np.float32)
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        return float(va @ vb) / norm if norm > 0 else 0.0


def _cell_weights(alpha: np.ndarray) -> np.ndarray:
    """(n, 224, 224) photo/canvas masks → (n, 7, 7): 1 for a cell of the feature map that is all
    photo, 0 for one that touches the canvas (a cell all canvas would pool the canvas's look,
    which every photo turned the same way shares). A photo that is nearly all canvas keeps all."""
    n, side = alpha.shape[0], alpha.shape[1] // efficientnet.CELLS
    photo = (alpha.reshape(n, efficientnet.CELLS, side, efficientnet.CELLS, side) > 0).mean(axis=(2, 4))
    weights: np.ndarray = (photo >= 1 - CANVAS_CELL).astype(np.float32)
    weights[weights.sum(axis=(1, 2)) == 0] = 1.0
    return weights


def _from_cosine(cosine: float) -> float:
    """The cnn-euclidean score of two unit vectors with this cosine."""
    return 1.0 - float(np.sqrt(2 - 2 * cosine)) / 2


class Cnn(CnnMethod):
    name = "cnn"
    summary = "EfficientNet features, cosine similarity"
    default_threshold = 0.80
    # Plain copies ≥ 0.803 (a copy shrunk to 192 px, under the network's 224); strangers ≤ 0.712.
    strict_threshold, loose_threshold = 0.80, 0.72

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return max(0.0, min(1.0, self.cosine(a, b)))


class CnnEuclidean(CnnMethod):
    name = "cnn-euclidean"
    summary = "EfficientNet features, Euclidean distance of unit vectors, 1 - d / 2"
    # The same pairs as cnn's thresholds.
    default_threshold = _from_cosine(Cnn.default_threshold)
    strict_threshold, loose_threshold = _from_cosine(0.80), _from_cosine(0.72)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * self.cosine(a, b))))
        return max(0.0, 1.0 - distance / 2.0)
