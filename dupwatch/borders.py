"""Borders around a photo: found and cut off before any fingerprint, as canvases are.

Sharing apps pad a photo to a square with white, black or a blurred, enlarged copy of itself;
films and screenshots come letterboxed; a product shot sits on a plain background. A border
is as much of a 32×32 fingerprint as the photo, so the copy of a padded photo looks nothing like
its original, and two different photos padded the same way look alike. Every method therefore
sees the photo with its borders cut off (`fingerprint.fingerprint_bytes`).

A border is the run of lines, from an edge inwards, with no detail: each line's pixels differ
from their neighbours (along it and across it) by less than a JPEG's noise. Flat fill of any
colour and a heavy blur both qualify; the photo's own edge stops the run. A photo's own plain
edge (a clear sky at the top) would qualify too, and cutting it is unstable: a re-encoded copy
may keep a row the original lost. So borders are cut only as a frame: on two opposite sides at
once, of about the same width (padding centres the photo; letterboxing too), or on all four
sides of one backdrop: each band flat, all of one level (a product on its backdrop; the dark
surround of a night photo is darker below than above, and its own).

A blurred pad is not flat: its gradients (1–7 grey levels a pixel) are as steep as a photo's
own. What a blur removes is curvature: second differences are near zero in the band, jump at
the seam (where the sharp photo starts) and stay high in the photo. So a blurred pad is found
as two bands, at both ends of one axis and of the same width (the photo is centred), without
curvature up to a seam and much smoother than the photo between them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from dupwatch.methods.base import median

FIND_SIDE = 256  # borders are found on a grey thumbnail this size (long side)
# A line is border when its mean absolute difference to neighbouring pixels is under this many
# grey levels (on the thumbnail).
SMOOTH = 1.5
MIN_BORDER = 0.02  # a border narrower than this share of the side is left alone
# A border on all four sides is one backdrop: its bands' mean levels within FILL grey levels of
# one another, each band's levels spread by at most FLAT_FILL.
FILL = 10.0
FLAT_FILL = 6.0
MIN_LEFT = 0.2  # a cut leaves at least this share of each side, or nothing is cut on that axis
SAME_WIDTH = 0.03  # opposite borders this close (share of the side) are a frame
# A blurred pad's seam (see `_seams`): the first line whose detail (second differences, grey
# levels) is at least SEAM_MIN and SEAM_JUMP times every line's before it (or SEAM_FLOOR, for
# a band with almost none); the two seams of an axis within SEAM_WIDTH of the side (plus a
# line) of the same width; and the bands' mean detail at most SEAM_SMOOTHER times the photo's.
SEAM_SIDE = 128  # blurred pads are found on a grey thumbnail at most this size (long side)
SEAM_MIN = 4.0
SEAM_JUMP = 3.0
SEAM_FLOOR = 0.5
SEAM_WIDTH = 0.01
SEAM_SMOOTHER = 0.3
MARGIN = 0.01  # trimmed past the border: a JPEG blends the seam


def unbordered(image: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    """`image` without its borders, and the box cut out of it; `image` and None if it has none."""
    # One scale for every copy, whatever its size: detail is measured per thumbnail pixel.
    scale = FIND_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    lum = image.convert("L")
    thumb = lum.resize(size, Image.Resampling.BOX)
    grey = np.asarray(thumb, dtype=np.float32)
    h, w = grey.shape
    if min(h, w) < 16:
        return image, None
    dx = np.abs(np.diff(grey, axis=1))
    dy = np.abs(np.diff(grey, axis=0))
    # Detail of each row and column: along it, and across to the next line inwards.
    detail = np.pad(dx, ((0, 0), (0, 1))) + np.pad(dy, ((0, 1), (0, 0)))
    rows, cols = detail.mean(axis=1), detail.mean(axis=0)
    top, bottom = _run(rows), _run(rows[::-1])
    left, right = _run(cols), _run(cols[::-1])
    # A blurred pad: its seam with the photo wins over a flat run that stops inside the band.
    # Found on a smaller thumbnail, never enlarged: an enlargement would smear the seam over
    # several lines.
    fine = np.asarray(_shrunk(thumb if scale < 1 else lum, SEAM_SIDE), dtype=np.float32)
    seam_rows, seam_cols = _seams(fine)
    if seam_rows:
        top, bottom = (round(k * h / fine.shape[0]) for k in seam_rows)
    if seam_cols:
        left, right = (round(k * w / fine.shape[1]) for k in seam_cols)
    frame = all(side >= MIN_BORDER * n for side, n in ((top, h), (bottom, h), (left, w), (right, w)))
    if frame and not (seam_rows or seam_cols):
        frame = _one_fill([grey[:top], grey[h - bottom:], grey[:, :left], grey[:, w - right:]])
    top, bottom = _sides(top, bottom, h, frame)
    left, right = _sides(left, right, w, frame)
    if not (top or bottom or left or right):
        return image, None
    sx, sy = image.width / w, image.height / h
    mx, my = MARGIN * image.width, MARGIN * image.height
    box = (round(left * sx + (mx if left else 0)), round(top * sy + (my if top else 0)),
           round((w - right) * sx - (mx if right else 0)), round((h - bottom) * sy - (my if bottom else 0)))
    return image.crop(box), box


def _one_fill(bands: list[np.ndarray]) -> bool:
    """Whether four bands around a photo are one backdrop: each flat, all of one level. The dark
    surround of a night photo has no detail either, but it is the photo's own: its sky and its
    ground differ in level, and how far each reaches shifts with every re-encode."""
    levels = [float(band.mean()) for band in bands]
    return max(levels) - min(levels) <= FILL and all(float(band.std()) <= FLAT_FILL for band in bands)


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """`image` with its long side at most `side`."""
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.BOX)


def _seams(grey: np.ndarray) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The widths of a blurred pad's bands across the rows, and across the columns, if any.

    A blur leaves gradients but no curvature: each line's detail here is its mean absolute
    second difference (along the line and across it), which is near zero in a blurred band,
    jumps at the seam and stays high in the photo.
    """
    cx = np.abs(np.diff(grey, 2, axis=1))
    cy = np.abs(np.diff(grey, 2, axis=0))
    rows, cols = cx.mean(axis=1), cy.mean(axis=0)
    rows[1:-1] += cy.mean(axis=1)
    cols[1:-1] += cx.mean(axis=0)
    return _seam(rows), _seam(cols)


def _seam(detail: np.ndarray) -> tuple[int, int] | None:
    """The two bands of a blurred pad on one axis, from each line's detail: both or neither."""
    n = len(detail)
    lo, hi = max(2, int(np.ceil(MIN_BORDER * n))), int((1 - MIN_LEFT) / 2 * n)
    if hi <= lo:
        return None
    first = _jump(detail, lo, hi)
    last = None if first is None else _jump(detail[::-1], lo, hi)
    if first is None or last is None or abs(first - last) > SEAM_WIDTH * n + 1:
        return None
    band = (detail[:first].sum() + detail[n - last:].sum()) / (first + last)
    if band > SEAM_SMOOTHER * median(detail[first:n - last]):
        return None
    return first, last


def _jump(detail: np.ndarray, lo: int, hi: int) -> int | None:
    """The first line from lo to hi whose detail is far above every line's before it."""
    before = np.maximum(np.maximum.accumulate(detail[: hi - 1]), SEAM_FLOOR)
    jumps = (detail[lo:hi] >= SEAM_MIN) & (detail[lo:hi] >= SEAM_JUMP * before[lo - 1:hi - 1])
    return lo + int(np.argmax(jumps)) if jumps.any() else None


def _run(detail: np.ndarray) -> int:
    """How many lines from the start have no detail."""
    busy = np.flatnonzero(detail > SMOOTH)
    return int(busy[0]) if len(busy) else len(detail)


def _sides(first: int, last: int, n: int, frame: bool) -> tuple[int, int]:
    """The two borders of one axis to cut: both or neither (see the module's docstring)."""
    if n - first - last < MIN_LEFT * n:
        return 0, 0
    if frame:
        return first, last
    if min(first, last) < MIN_BORDER * n or abs(first - last) > SAME_WIDTH * n:
        return 0, 0
    return first, last
