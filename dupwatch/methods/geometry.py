"""Geometry: local features that one homography carries onto the other photo.

A global score (hash, pixel cosine, CNN) cannot tell a hard edit from a different photo of a
similar scene: a 60 % crop or a 25° rotation scores lower than two different mountains. A set of
local features that a single plane-to-plane mapping carries from one image onto the other can.

Features: SIFT keypoints of the photo shrunk to DETECT pixels on its long side, the FEATURES
strongest kept. Positions are stored as uint16 in 1/16 px and descriptors as uint8 (OpenCV's SIFT
descriptors already lie in 0..255), so a photo costs at most 4 + FEATURES × 132 bytes.

Matching: Lowe's ratio test, then a MAGSAC homography (OpenCV's USAC). The new photo's features
are also matched mirrored (SIFT is not mirror-invariant; mirroring its keypoints and permuting
its descriptors costs no second extraction), and the better of the two wins.

A repetitive façade can line up many features under some homography, so inliers alone do not
confirm. The guards, each measured on the shared photos and a trap set of repetitive structure
(`benchmarks/geometry.py`): enough inliers; a fair share of the ratio-test matches being
inliers; inliers spread over a fair part of both images, and not along one line; a
well-conditioned transform (bounded zoom and shear, little perspective); and density: of the
keypoints the homography carries into the other photo, a fair share must be inliers. A copy
re-finds most of its keypoints; the left and right halves of a symmetric façade line up their
windows and nothing else. The score is 0 when a guard fails, else inliers / (inliers + HALF): 0.5 at HALF
inliers, 0.8 at four times that.

OpenCV is imported on first use, so dupwatch imports and runs without it (`available()`).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from dupwatch.methods.base import Method

if TYPE_CHECKING:
    from types import ModuleType

# Keypoints are found with the photo at DETECT pixels on its long side and their positions kept
# in a frame of SIDE: on the shared photos, 500 px found every hard copy (crops, turns,
# perspective) that 640 px did, for less CPU, and a 12-megapixel JPEG then draft-decodes at 1/8
# as the other methods need (figures: docs/methods.md, "Why SIFT, and at 500 px").
DETECT = 500
SIDE = 640
FEATURES = 400  # strongest keypoints kept
RATIO = 0.8  # Lowe's ratio test
REPROJECTION = 4.0  # pixels at SIDE: how far an inlier may land from where the homography puts it
HALF = 25  # inliers at which the score is 0.5
MIN_INLIERS = 15
MIN_INLIER_RATIO = 0.25
MIN_COVERAGE = 0.04  # share of each image's overlap with the other that the inliers' hull spans
MAX_ZOOM = 6.0  # how much larger one photo's content may appear in the other (normalised frames)
MAX_SHEAR = 3.0  # ratio of the affine part's singular values
MAX_PERSPECTIVE = 0.002  # |h31|, |h32| at SIDE: a tilt, not a projection to infinity

MIN_SPREAD = 0.15  # inliers along one line (an edge) do not pin down a plane: minor/major axis
# Between what true copies reach (crops, turns, perspective) and what the halves of a symmetric
# façade or another repetitive scene reach (benchmarks/geometry.py; figures: docs/methods.md).
MIN_DENSITY = 0.25
FLAT_VARIANCE = 4.0  # grey levels², over 7×7 pixels: a fill, not texture
FLAT_SIDE = 15  # pixels: the smallest flat square that counts as a fill
FILL_MARGIN = 17  # pixels around a fill where no keypoint is taken

_FIXED = 16  # positions in 1/16 px
_HEADER = 4  # bytes: width and height of the frame, uint16 each


def available() -> bool:
    return importlib.util.find_spec("cv2") is not None


@cache
def _cv2() -> ModuleType:
    import cv2

    cv2.setNumThreads(1)  # one photo at a time; the pipeline's processes share the cores
    return cv2


def _mirror_permutation() -> np.ndarray:
    """How a SIFT descriptor's 128 bins move when the image is mirrored left to right.

    OpenCV lays a descriptor out as 4×4 cells × 8 orientation bins in the keypoint's own frame.
    Mirroring reverses that frame's handedness: the cells' rows swap end to end and every
    orientation bin θ becomes −θ. Checked against descriptors of really mirrored photos.
    """
    cells = np.arange(128).reshape(4, 4, 8)[::-1]
    return np.ascontiguousarray(cells[:, :, (-np.arange(8)) % 8]).reshape(-1)


MIRROR = _mirror_permutation()


@dataclass(frozen=True)
class Features:
    width: int  # of the frame the points are in: the photo at SIDE pixels on its long side
    height: int
    points: np.ndarray  # (n, 2) float32, x right, y down
    descriptors: np.ndarray  # (n, 128) uint8

    def pack(self) -> np.ndarray:
        head = np.array([self.width, self.height], dtype="<u2").view(np.uint8)
        fixed = np.clip(np.rint(self.points * _FIXED), 0, 65535).astype("<u2").view(np.uint8)
        body = np.concatenate([fixed.reshape(-1, 4), self.descriptors], axis=1)
        return np.concatenate([head, body.reshape(-1)])

    @classmethod
    def unpack(cls, data: np.ndarray) -> Features:
        width, height = (int(v) for v in data[:_HEADER].view("<u2"))
        body = data[_HEADER:].reshape(-1, 132)
        points = body[:, :4].copy().view("<u2").astype(np.float32) / _FIXED
        return cls(width, height, points.reshape(-1, 2), np.ascontiguousarray(body[:, 4:]))

    def mirrored(self) -> Features:
        points = self.points.copy()
        points[:, 0] = self.width - points[:, 0]
        return Features(self.width, self.height, points, self.descriptors[:, MIRROR])


def extract(image: Image.Image, detector: Any = None, detect: int = DETECT) -> Features:
    """The strongest keypoints of `image` (SIFT unless another OpenCV detector is given)."""
    grey = image.convert("L")
    w, h = grey.size
    if max(w, h) > detect:
        scale = detect / max(w, h)
        grey = grey.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    # Positions in a frame whose long side is SIDE, however small the photo: two photos shown at
    # the same size, so that the zoom found is the crop's, not a ratio of file sizes.
    frame = SIDE / max(grey.width, grey.height)
    width, height = max(1, round(grey.width * frame)), max(1, round(grey.height * frame))
    pixels = np.asarray(grey)
    keypoints, descriptors = (detector or _sift()).detectAndCompute(pixels, _away_from_fill(pixels))
    if descriptors is None or not keypoints:
        return Features(width, height, np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8))
    # SIFT may return a few more than asked (ties in response); keep the strongest.
    order = np.argsort([-k.response for k in keypoints], kind="stable")[:FEATURES]
    points = np.array([keypoints[i].pt for i in order], dtype=np.float32).reshape(-1, 2) * frame
    return Features(width, height, points, np.clip(np.rint(descriptors[order]), 0, 255).astype(np.uint8))


def _away_from_fill(pixels: np.ndarray) -> np.ndarray:
    """Where keypoints may be: not on the edge of a large flat area.

    A photo rotated onto a canvas has black (or white) corners, and a framed or padded one flat
    bands: their edges make sharp keypoints that sit in the same places in any two photos
    treated alike, so two different photos turned by the same angle would line up along them.
    """
    cv2 = _cv2()
    square = cv2.blur(pixels.astype(np.float32) ** 2, (7, 7))
    mean = cv2.blur(pixels.astype(np.float32), (7, 7))
    flat = ((square - mean**2) < FLAT_VARIANCE).astype(np.uint8)
    # Only big flat areas: a fill, not a patch of clear sky between two branches.
    flat = cv2.morphologyEx(flat, cv2.MORPH_OPEN, np.ones((FLAT_SIDE, FLAT_SIDE), np.uint8))
    near = cv2.dilate(flat, np.ones((FILL_MARGIN, FILL_MARGIN), np.uint8))
    return np.where(near > 0, 0, 255).astype(np.uint8)


@cache
def _sift() -> Any:
    return _cv2().SIFT_create(nfeatures=FEATURES)


@dataclass(frozen=True)
class Verdict:
    """What the geometric check found between a new photo (a) and an indexed one (b)."""

    score: float  # 0 when a guard failed
    inliers: int
    matches: int  # ratio-test matches the homography was fitted to
    coverage: float  # the smaller share of an image that the inliers span
    scale: float  # how much larger b's content appears in a, both shown at the same size
    rotation: float  # degrees a is turned counter-clockwise from b
    mirrored: bool
    reason: str | None  # which guard failed, if one did
    # Inliers per keypoint that the homography carries into the other photo, on the side with
    # fewer: a true copy re-finds most of them, a look-alike structure only its repeats.
    density: float = 0.0
    # Median distance (pixels at SIDE) from where the homography puts an inlier to where it was
    # found: an edit of one capture is one exact plane-to-plane mapping, another shot of a scene
    # with depth only roughly one (parallax).
    residual: float = 0.0
    # a's frame onto b's (SIDE on the long side each; a as it is, mirrored or not), when found.
    homography: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def inlier_ratio(self) -> float:
        return self.inliers / self.matches if self.matches else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"inliers": self.inliers, "inlier_ratio": round(self.inlier_ratio, 3),
                "coverage": round(self.coverage, 3), "scale": round(self.scale, 3),
                "rotation": round(self.rotation, 1), "mirrored": self.mirrored,
                "density": round(self.density, 3), "residual": round(self.residual, 3)}


NOTHING = Verdict(0.0, 0, 0, 0.0, 1.0, 0.0, False, "too few features")


def verify(a: Features, b: Features) -> Verdict:
    """The better of matching `a` as it is and mirrored, against `b`."""
    plain = _match(a, b, mirrored=False)
    if plain.score > 0 and plain.inliers >= 4 * HALF:
        return plain  # a mirrored fit cannot beat this; skip the second match
    flipped = _match(a.mirrored(), b, mirrored=True)
    return max(plain, flipped, key=lambda v: (v.score, v.inliers))


# --- A closer look: a small crop's original, its keypoints found again where the crop lies ------
#
# A crop that keeps 40 % of each side is 16 % of its original: of the original's FEATURES
# keypoints few fall on it, and those were found at a scale where the crop's detail is lost. A
# first fit with a few inliers says where the crop lies; the original is decoded larger and its
# keypoints found again on that box alone, at the crop's scale, and the pair judged again.

CLOSER_FROM = 6  # inliers of a first fit that make a closer look worth a decode
CLOSER_SHARE = 0.5  # ...when the smaller photo covers at most this share of the larger one
CLOSER_MARGIN = 0.15  # of the box's size, on each side: a weak first fit's corners are rough
CLOSER_MAX = 4  # the closer look decodes at most this many times DETECT on the long side


@dataclass(frozen=True)
class Closer:
    """Where to look again: on photo a (the new one) or b, a box in its frame (x0, y0, x1, y1)."""

    on_a: bool
    box: tuple[float, float, float, float]

    def size(self, features: Features) -> int:
        """The decode's `min_size` (its short side) that shows the box at DETECT pixels."""
        x0, y0, x1, y1 = self.box
        zoom = min(max(features.width, features.height) / max(x1 - x0, y1 - y0, 1.0), CLOSER_MAX)
        long, short = max(features.width, features.height), min(features.width, features.height)
        return math.ceil(DETECT * zoom * short / long)


def closer(a: Features, b: Features, verdict: Verdict) -> Closer | None:
    """Whether and where to find keypoints again: on the larger of the two photos, where the
    other one lies under a first fit with some inliers."""
    if verdict.homography is None or verdict.inliers < CLOSER_FROM \
            or not 1 / MAX_ZOOM <= verdict.scale <= MAX_ZOOM:  # a fit no edit makes: nowhere to look
        return None
    try:
        back = np.linalg.inv(verdict.homography)
    except np.linalg.LinAlgError:
        return None
    # b's content appears larger in a (a zoomed in): a is the crop, look closer at b.
    on_a = verdict.scale < 1.0
    source, carry, target = (b, back, a) if on_a else (a, verdict.homography, b)
    corners = np.array([[0, 0], [source.width, 0], [source.width, source.height], [0, source.height]],
                       dtype=np.float64).reshape(-1, 1, 2)
    carried = _cv2().perspectiveTransform(corners, carry).reshape(-1, 2).astype(np.float32)
    if not np.isfinite(carried).all() or not _cv2().isContourConvex(carried.reshape(-1, 1, 2)):
        return None
    (x0, y0), (x1, y1) = carried.min(axis=0), carried.max(axis=0)
    x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
    x1, y1 = min(float(target.width), float(x1)), min(float(target.height), float(y1))
    # The share is the smaller photo's own area, not its box's: a 45° turn's box is most of the frame.
    share = _overlap(source, carry, target) / (target.width * target.height)
    if x1 - x0 < 1 or y1 - y0 < 1 or share > CLOSER_SHARE:
        return None
    mx, my = CLOSER_MARGIN * (x1 - x0), CLOSER_MARGIN * (y1 - y0)
    return Closer(on_a, (max(0.0, x0 - mx), max(0.0, y0 - my),
                         min(float(target.width), x1 + mx), min(float(target.height), y1 + my)))


def extract_box(image: Image.Image, frame: Features, box: tuple[float, float, float, float]) -> Features:
    """Keypoints of `box` (in `frame`'s coordinates, the frame laid over `image` whole), found at
    DETECT pixels on the box's long side, with their positions in `frame`'s coordinates."""
    sx, sy = image.width / frame.width, image.height / frame.height
    x0, y0, x1, y1 = box
    pixels = (math.floor(x0 * sx), math.floor(y0 * sy), math.ceil(x1 * sx), math.ceil(y1 * sy))
    found = extract(image.crop(pixels))
    # extract() puts points in a frame of SIDE on the crop's long side: back to the photo's frame.
    width, height = (pixels[2] - pixels[0]) / sx, (pixels[3] - pixels[1]) / sy
    to_frame = np.array([width / found.width, height / found.height], dtype=np.float32)
    points = found.points * to_frame + np.array([pixels[0] / sx, pixels[1] / sy], dtype=np.float32)
    return Features(frame.width, frame.height, points, found.descriptors)


def _match(a: Features, b: Features, mirrored: bool) -> Verdict:
    if len(a.descriptors) < MIN_INLIERS or len(b.descriptors) < MIN_INLIERS:
        return NOTHING
    pairs = _matcher().knnMatch(a.descriptors.astype(np.float32), b.descriptors.astype(np.float32), k=2)
    good = [(p[0].queryIdx, p[0].trainIdx) for p in pairs
            if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    return judge(a, b, good, mirrored)


def judge(a: Features, b: Features, matched: Sequence[tuple[int, int]], mirrored: bool = False) -> Verdict:
    """The homography through matched keypoints (index in a, index in b), and the guards.

    Separate from how the matches were found, so that other detectors can be judged by the same
    rules (`benchmarks/detectors.py`).
    """
    cv2 = _cv2()
    if len(matched) < MIN_INLIERS:
        return Verdict(0.0, 0, len(matched), 0.0, 1.0, 0.0, mirrored, "too few matches")
    pairs = np.array(matched, dtype=np.intp).reshape(-1, 2)
    src, dst = a.points[pairs[:, 0]], b.points[pairs[:, 1]]
    homography, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, REPROJECTION, maxIters=2000,
                                          confidence=0.999)
    if homography is None or mask is None:
        return Verdict(0.0, 0, len(pairs), 0.0, 1.0, 0.0, mirrored, "no homography")
    inlying = mask.ravel().astype(bool)
    inliers = int(inlying.sum())
    coverage = min(_hull_share(src[inlying], a, _overlap(b, np.linalg.pinv(homography), a)),
                   _hull_share(dst[inlying], b, _overlap(a, homography, b)))
    # ...and of one of the two frames whole: a crop's inliers span most of the crop.
    spanned = max(_hull_share(src[inlying], a, a.width * a.height),
                  _hull_share(dst[inlying], b, b.width * b.height))
    spread = _spread(src[inlying])
    scale, rotation, shear, perspective = _shape(homography)
    density = _density(inliers, a, homography, b)
    residual = _residual(src[inlying], dst[inlying], homography)
    carry = homography
    if mirrored:
        rotation = -rotation  # a was mirrored before matching: report the turn of the original
        flip = np.array([[-1.0, 0.0, a.width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        carry = homography @ flip  # from the original a, as the pixels are
    reason = None
    if inliers < MIN_INLIERS:
        reason = "too few inliers"
    elif inliers / len(pairs) < MIN_INLIER_RATIO:
        reason = "too small a share of the matches are inliers"
    elif coverage < MIN_COVERAGE or spanned < MIN_COVERAGE:
        reason = "inliers bunched in a small area"
    elif spread < MIN_SPREAD:
        reason = "inliers along a line"
    elif density < MIN_DENSITY:
        reason = "too few of the keypoints where the photos overlap agree (repetitive structure?)"
    elif not (1 / MAX_ZOOM <= scale <= MAX_ZOOM) or shear > MAX_SHEAR or perspective > MAX_PERSPECTIVE:
        reason = "degenerate transform"
    score = 0.0 if reason else inliers / (inliers + HALF)
    return Verdict(score, inliers, len(pairs), coverage, 1 / scale, rotation, mirrored, reason, density,
                   residual, carry)


def _residual(src: np.ndarray, dst: np.ndarray, homography: np.ndarray) -> float:
    if not len(src):
        return 0.0
    carried = _cv2().perspectiveTransform(src.reshape(-1, 1, 2).astype(np.float64), homography)
    return float(np.median(np.linalg.norm(carried.reshape(-1, 2) - dst, axis=1)))


@cache
def _matcher() -> Any:
    cv2 = _cv2()
    return cv2.BFMatcher(cv2.NORM_L2)


def _hull_share(points: np.ndarray, features: Features, overlap: float) -> float:
    """The share of the overlap (in `features`' frame, its area given) that the points span."""
    if len(points) < 3:
        return 0.0
    area = float(_cv2().contourArea(_cv2().convexHull(points.astype(np.float32))))
    return area / max(1.0, min(overlap, features.width * features.height))


def _overlap(source: Features, homography: np.ndarray, target: Features) -> float:
    """The area of `target`'s frame that `source`'s frame, carried by the homography, covers: a
    crop's features can only span that much of its original."""
    cv2 = _cv2()
    corners = np.array([[0, 0], [source.width, 0], [source.width, source.height], [0, source.height]],
                       dtype=np.float64).reshape(-1, 1, 2)
    carried = cv2.perspectiveTransform(corners, homography).reshape(-1, 2).astype(np.float32)
    frame = np.array([[0, 0], [target.width, 0], [target.width, target.height], [0, target.height]],
                     dtype=np.float32)
    if not np.isfinite(carried).all() or not cv2.isContourConvex(carried.reshape(-1, 1, 2)):
        return float(target.width * target.height)  # a wild homography: the whole frame
    area, _ = cv2.intersectConvexConvex(carried, frame)
    return max(float(area), 1.0)


def _density(inliers: int, a: Features, homography: np.ndarray, b: Features) -> float:
    try:
        back = np.linalg.inv(homography)
    except np.linalg.LinAlgError:
        return 0.0  # a singular homography is degenerate anyway
    return inliers / max(1, min(_landing(a, homography, b), _landing(b, back, a)))


def _landing(source: Features, homography: np.ndarray, target: Features) -> int:
    """How many of `source`'s keypoints the homography carries inside `target`'s frame."""
    if not len(source.points):
        return 0
    carried = _cv2().perspectiveTransform(source.points.reshape(-1, 1, 2).astype(np.float64), homography)
    x, y = carried[:, 0, 0], carried[:, 0, 1]
    return int(((x >= 0) & (x < target.width) & (y >= 0) & (y < target.height)).sum())


def _spread(points: np.ndarray) -> float:
    """How far points spread across their main direction: √(λmin / λmax) of their covariance."""
    if len(points) < 3:
        return 0.0
    low, high = np.linalg.eigvalsh(np.cov(points.astype(np.float64).T))
    return math.sqrt(max(float(low), 0.0) / float(high)) if high > 0 else 0.0


def _shape(homography: np.ndarray) -> tuple[float, float, float, float]:
    """Zoom, rotation (degrees, counter-clockwise), shear and perspective of a homography a → b."""
    h = homography / homography[2, 2]
    affine = h[:2, :2]
    singular = np.linalg.svd(affine, compute_uv=False)
    scale = math.sqrt(max(abs(float(np.linalg.det(affine))), 1e-12))
    shear = float(singular[0] / max(float(singular[1]), 1e-12))
    # The turn that carries a back onto b, read in image coordinates (y down), is a's own
    # counter-clockwise turn from b: a copy Pillow turned by +25° reads +25 (a test checks).
    rotation = math.degrees(math.atan2(float(affine[1, 0]), float(affine[0, 0])))
    perspective = float(np.abs(h[2, :2]).max())
    return scale, rotation, shear, perspective


class Geometry(Method):
    name = "geometry"
    summary = "SIFT features under one MAGSAC homography (crops, rotations, perspective)"
    default_threshold = 0.5
    needs_size = DETECT * 3 // 4  # a 4:3 photo decodes with its long side at DETECT or more
    shape = (-1,)

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return extract(image).pack()

    def from_bytes(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.uint8)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return self.verdict(a, b).score

    def verdict(self, a: np.ndarray, b: np.ndarray) -> Verdict:
        return verify(Features.unpack(a), Features.unpack(b))


# --- Same capture: do the pixels agree where the homography lays one photo on the other? -------
#
# A homography fits one plane. Two shots of a façade from two places fit it too, and two pages of
# one document line up their margins and lines of text. An edit of one capture (a crop, a turn, a
# resize, a recompression, a tone change) puts the same pixels back where they were; another
# capture does not: parallax off the plane, people moved, other light, other words. So the photo
# with more pixels on the overlap is warped onto the other, both small, and compared block by
# block, each block normalised for its own brightness and contrast (a tone curve, a vignette).

CAPTURE_SIDE = 256  # pixels on the long side of each photo when compared
CAPTURE_BLOCK = 16  # pixels: each block is compared on its own
CAPTURE_BLUR = 1.0  # sigma (pixels) over both before comparing: JPEG blocks, half-pixel error
CAPTURE_FLAT = 16.0  # grey-level variance below which a block is flat (no evidence either way)
CAPTURE_EDGE = 3  # pixels of the warped photo's edge left out (interpolated against black)


def capture_agreement(a: np.ndarray, b: np.ndarray, carry: np.ndarray,
                      a_frame: tuple[int, int], b_frame: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Correlation of each block of the overlap that has texture in both, and the blocks overlapping.

    `a` and `b` are grey images (any size, the photo's shape), `carry` a homography from `a_frame`
    to `b_frame` (width, height: the frames the features were found in).
    """
    cv2 = _cv2()
    to_a = np.diag([a.shape[1] / a_frame[0], a.shape[0] / a_frame[1], 1.0])
    to_b = np.diag([b.shape[1] / b_frame[0], b.shape[0] / b_frame[1], 1.0])
    try:
        forward = to_b @ carry @ np.linalg.inv(to_a)
        back = np.linalg.inv(forward)
    except np.linalg.LinAlgError:
        return np.zeros(0, np.float32), 0
    zoom = math.sqrt(abs(float(np.linalg.det(forward[:2, :2] / forward[2, 2]))))
    if not 1 / MAX_ZOOM <= zoom <= MAX_ZOOM:
        return np.zeros(0, np.float32), 0  # no overlap worth a look
    # Warp the photo that shows the overlap larger onto the other: shrinking loses nothing.
    source, target, warp = (b, a, back) if zoom > 1 else (a, b, forward)
    shrink = min(zoom, 1 / zoom) if zoom > 0 else 1.0
    source = source.astype(np.float32)
    if shrink < 0.9:
        source = cv2.GaussianBlur(source, (0, 0), 0.5 / shrink)
    size = (target.shape[1], target.shape[0])
    warped = cv2.warpPerspective(source, warp, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.ones(source.shape, np.uint8), warp, size, flags=cv2.INTER_NEAREST)
    inside = cv2.erode(inside, np.ones((2 * CAPTURE_EDGE + 1,) * 2, np.uint8))
    one = cv2.GaussianBlur(warped, (0, 0), CAPTURE_BLUR)
    two = cv2.GaussianBlur(target.astype(np.float32), (0, 0), CAPTURE_BLUR)
    n = CAPTURE_BLOCK
    rows, cols = target.shape[0] // n, target.shape[1] // n

    def blocks(x: np.ndarray) -> np.ndarray:
        return x[: rows * n, : cols * n].reshape(rows, n, cols, n).swapaxes(1, 2).reshape(rows * cols, n * n)

    whole = blocks(inside).min(axis=1) > 0
    p, q = blocks(one)[whole], blocks(two)[whole]
    p = p - p.mean(axis=1, keepdims=True)
    q = q - q.mean(axis=1, keepdims=True)
    vp, vq = (p * p).mean(axis=1), (q * q).mean(axis=1)
    textured = (vp > CAPTURE_FLAT) & (vq > CAPTURE_FLAT)
    ncc = (p * q).mean(axis=1)[textured] / np.sqrt(vp[textured] * vq[textured])
    return ncc.astype(np.float32), int(whole.sum())


CAPTURE_QUANTILE = 0.2  # an overlay (a caption, a sticker, a logo) may cover this share of blocks
# The correlation that share of the textured blocks must reach or pass. Measured on the shared
# photos' edits and on other captures (a stereo pair, pages of one document, one app's
# screenshots): see docs/methods.md, "Same capture".
MIN_CAPTURE = 0.75
# The most an edit's inliers stray from its homography (median, pixels at SIDE). Measured on the
# shared photos' edits: the screenshot's photo and the 25 % resize stray most; other shots of a
# building (Strecha's castle) up to several times more (docs/robust.md).
MAX_RESIDUAL = 0.8
CAPTURE_MIN_BLOCKS = 8  # fewer textured blocks in the overlap: the pixels cannot tell


def same_capture(a: np.ndarray, b: np.ndarray, carries: Sequence[np.ndarray],
                 a_frame: tuple[int, int], b_frame: tuple[int, int]) -> float | None:
    """How well the pixels of `a` and `b` agree under the best of `carries` (a homography from
    `a_frame` to `b_frame` each), from -1 to 1; None when no overlap has enough texture to tell."""
    best: float | None = None
    for carry in carries:
        ncc, _ = capture_agreement(a, b, carry, a_frame, b_frame)
        if len(ncc) >= CAPTURE_MIN_BLOCKS:
            value = float(np.quantile(ncc, CAPTURE_QUANTILE))
            best = value if best is None else max(best, value)
    return best


ROUGH_RATIO = 0.9  # a looser ratio test: an alignment to be checked pixel by pixel, not a verdict
ROUGH_MATCHES = 6


def rough(a: Features, b: Features) -> list[np.ndarray]:
    """Similarity transforms (turn, zoom, shift; as the pixels are, and mirrored) from a to b
    through whatever matches there are, when too few for a verdict: only to lay one photo on
    the other for `same_capture`, which then decides."""
    cv2 = _cv2()
    out: list[np.ndarray] = []
    if len(a.descriptors) < ROUGH_MATCHES or len(b.descriptors) < ROUGH_MATCHES:
        return out
    flip = np.array([[-1.0, 0.0, a.width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    theirs = b.descriptors.astype(np.float32)
    for source, after in ((a, np.eye(3)), (a.mirrored(), flip)):
        pairs = _matcher().knnMatch(source.descriptors.astype(np.float32), theirs, k=2)
        good = np.array([(p[0].queryIdx, p[0].trainIdx) for p in pairs
                         if len(p) == 2 and p[0].distance < ROUGH_RATIO * p[1].distance], dtype=np.intp)
        if len(good) < ROUGH_MATCHES:
            continue
        affine, _ = cv2.estimateAffinePartial2D(source.points[good[:, 0]], b.points[good[:, 1]],
                                                method=cv2.RANSAC, ransacReprojThreshold=2 * REPROJECTION)
        if affine is not None:
            out.append(np.vstack([affine, [0.0, 0.0, 1.0]]) @ after)
    return out


def stretch(a_frame: tuple[int, int], b_frame: tuple[int, int]) -> np.ndarray:
    """The homography that lays one frame over the other whole: a plain copy, resized."""
    return np.diag([b_frame[0] / a_frame[0], b_frame[1] / a_frame[1], 1.0])


def alignments(a: Features, b: Features, verdict: Verdict) -> list[np.ndarray]:
    """Ways to lay a on b for `same_capture`: the verdict's homography when one was fitted, else
    rough ones; and always the whole frame on the whole frame."""
    found = [verdict.homography] if verdict.homography is not None else rough(a, b)
    return [*found, stretch((a.width, a.height), (b.width, b.height))]
