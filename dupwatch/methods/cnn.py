"""CNN feature similarity: EfficientNet features, compared by cosine or by Euclidean distance.

The article's fifth method. `prepare` shrinks a photo to 224×224 RGB, and `fingerprint_batch`
embeds many at once: in a scan each worker process does both for its own chunk of photos
(see `fingerprint_files`). The model is loaded on first use, once per process, and torch is
never imported unless a CNN method is configured.

A photo turned onto a black or white canvas (what a rotation tool leaves) is turned back and
cut out of its canvas first (`straightened`): otherwise the canvas, not the photo, decides
which photos look alike, and every photo turned the same way looks like every other one.

Both methods share one stored embedding (1280 float16, unit length): `cnn` scores it by cosine,
max(0, cos); `cnn-euclidean` by the distance d between the unit vectors, 1 - d / 2. For unit
vectors d² = 2 - 2·cos, so the two rank pairs identically; they differ in how a score reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from dupwatch.methods import efficientnet
from dupwatch.methods.base import Method

CANVAS_DARK, CANVAS_BRIGHT = 12, 243  # a canvas corner is this dark or this bright...
CANVAS_FLAT = 2.0  # ...and this flat (grey-level standard deviation)
CANVAS_TOLERANCE = 6  # grey levels from the corner's value that are still canvas
CANVAS_CELL = 0.01  # share of a feature-map cell that may be canvas and still count
STRAIGHTEN_SIDE = 256  # the canvas is found on a thumbnail this size
STRAIGHTEN_MIN_CANVAS = 0.03  # the photo leaves at least this much of the image (a 1° turn: 4 %)
STRAIGHTEN_RECTANGLE = 0.95  # the photo's area fills this much of its turned bounding rectangle
STRAIGHTEN_MARGIN = 0.02  # trimmed from each side of the cut-out: the turn blended its edges


class CnnMethod(Method):
    summary = "EfficientNet features (average-pooled, unit length)"
    needs_size = efficientnet.INPUT
    needs_colour = True
    dtype = np.float16
    shape = (efficientnet.FEATURES,)
    batched = True
    # 2: pooled over the photo's own area when it was turned onto a canvas (see `canvas`).
    # 3: turned back and cut out of that canvas first (see `straightened`).
    version = 3

    @property
    def key(self) -> str:
        # One embedding serves both scores; a different backbone or weights file is another key.
        weights = "" if self.options.cnn_weights is None else f"/{self.options.cnn_weights}"
        return f"cnn/{self.version}/{self.options.cnn_model}{weights}"

    def prepare(self, image: Image.Image) -> np.ndarray:
        """224×224 RGB and, as a fourth channel, 255 where the photo is and 0 on its canvas."""
        image = image.convert("RGB")
        rgb = _input(image)
        fill = canvas(rgb)
        if fill.mean() >= STRAIGHTEN_MIN_CANVAS:  # the rest, nearly all photos, pay nothing more
            work = _shrunk(image, 2 * efficientnet.INPUT)  # turned at about 448 px, not 4000
            upright = straightened(work)
            if upright is not work:
                rgb = _input(upright)
                fill = canvas(rgb)
        return np.dstack([rgb, np.where(fill, 0, 255).astype(np.uint8)])

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


def canvas(rgb: np.ndarray) -> np.ndarray:
    """Where a photo turned onto a flat black or white canvas shows the canvas, not the photo.

    A rotation tool fills the four corners with pure black (or white); those triangles touch the
    image's edges, so every row that crosses one meets it as a run of fill from the left or the
    right edge. Only corners that are such fill start a run; a photo whose corners are anything
    else (sky, shadow, texture) has no canvas and is pooled as it always was.
    """
    grey = rgb.astype(np.int16).mean(axis=2)
    h, w = grey.shape
    out = np.zeros((h, w), dtype=bool)
    cols = np.arange(w)
    for row_slice, from_left in ((slice(0, 3), True), (slice(0, 3), False), (slice(h - 3, h), True),
                                 (slice(h - 3, h), False)):
        corner = grey[row_slice, :3] if from_left else grey[row_slice, w - 3:]
        value = float(corner.mean())
        if corner.std() > CANVAS_FLAT or CANVAS_DARK < value < CANVAS_BRIGHT:
            continue
        fill = np.abs(grey - value) <= CANVAS_TOLERANCE
        if not from_left:
            fill = fill[:, ::-1]
        run = np.where(fill.all(axis=1), w, np.argmin(fill, axis=1))  # fill pixels from the edge
        inside = cols[None, :] < run[:, None]
        out |= inside if from_left else inside[:, ::-1]
    return out


def _input(image: Image.Image) -> np.ndarray:
    size = (efficientnet.INPUT, efficientnet.INPUT)
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """At most about `side` on the long side, by box averaging: a tenth of a resize's cost."""
    return image.reduce(max(1, max(image.size) // side))


def straightened(image: Image.Image) -> Image.Image:
    """An RGB photo turned onto a canvas, turned back upright and cut out of it; any other as is.

    The photo's area on a canvas is a turned rectangle: OpenCV's smallest enclosing rectangle
    of its outline gives the angle (within 0.1° on the shared photos, measured at 3°–40°). A
    shape that is not a rectangle is a photo with dark or bright corners of its own and is left
    alone. Turns past 45° come back as the nearest quarter turn: a CNN sees a sideways photo.
    """
    import cv2  # in the cnn extra, as for geometry; imported here so the module loads without it

    photo = ~canvas(np.asarray(_shrunk(image, STRAIGHTEN_SIDE)))
    if photo.mean() > 1 - STRAIGHTEN_MIN_CANVAS or not photo.any():
        return image
    contours, _ = cv2.findContours(photo.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=cv2.contourArea)
    rectangle = cv2.minAreaRect(outline)
    (_, _), (w, h), _ = rectangle
    if not 0.25 * photo.size <= w * h <= (1 - STRAIGHTEN_MIN_CANVAS) * photo.size:
        return image  # a speck, or dark patches at the edges of a photo that fills the image
    if cv2.contourArea(outline) < STRAIGHTEN_RECTANGLE * w * h:
        return image
    (x0, y0), (x1, y1) = cv2.boxPoints(rectangle)[:2]
    # The angle of one side, counter-clockwise as shown (rows grow downwards), folded to ±45°.
    turn = (math.degrees(math.atan2(y0 - y1, x1 - x0)) + 45) % 90 - 45
    mask = Image.fromarray(photo.astype(np.uint8) * 255).rotate(-turn, expand=True)
    upright = image.rotate(-turn, resample=Image.Resampling.BILINEAR, expand=True)
    box = mask.getbbox()
    if box is None:
        return image
    left, top, right, bottom = box
    sx, sy = upright.width / mask.width, upright.height / mask.height
    mx, my = STRAIGHTEN_MARGIN * (right - left), STRAIGHTEN_MARGIN * (bottom - top)
    return upright.crop((round((left + mx) * sx), round((top + my) * sy),
                         round((right - mx) * sx), round((bottom - my) * sy)))


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
