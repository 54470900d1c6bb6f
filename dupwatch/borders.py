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
(a product on its backdrop).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

FIND_SIDE = 256  # borders are found on a grey thumbnail this size (long side)
# A line is border when its mean absolute difference to neighbouring pixels is under this many
# grey levels (on the thumbnail).
SMOOTH = 1.5
MIN_BORDER = 0.02  # a border narrower than this share of the side is left alone
MIN_LEFT = 0.2  # a cut leaves at least this share of each side, or nothing is cut on that axis
SAME_WIDTH = 0.03  # opposite borders this close (share of the side) are a frame
MARGIN = 0.01  # trimmed past the border: a JPEG blends the seam


def unbordered(image: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int] | None]:
    """`image` without its borders, and the box cut out of it; `image` and None if it has none."""
    # One scale for every copy, whatever its size: detail is measured per thumbnail pixel.
    scale = FIND_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    grey = np.asarray(image.convert("L").resize(size, Image.Resampling.BOX), dtype=np.float32)
    h, w = grey.shape
    if min(h, w) < 16:
        return image, None
    dx = np.abs(np.diff(grey, axis=1))
    dy = np.abs(np.diff(grey, axis=0))
    # Detail of each row and column: along it, and across to the next line inwards.
    rows = (np.pad(dx, ((0, 0), (0, 1))) + np.pad(dy, ((0, 1), (0, 0)))).mean(axis=1)
    cols = (np.pad(dx, ((0, 0), (0, 1))) + np.pad(dy, ((0, 1), (0, 0)))).mean(axis=0)
    top, bottom = _run(rows), _run(rows[::-1])
    left, right = _run(cols), _run(cols[::-1])
    frame = all(side >= MIN_BORDER * n for side, n in ((top, h), (bottom, h), (left, w), (right, w)))
    top, bottom = _sides(top, bottom, h, frame)
    left, right = _sides(left, right, w, frame)
    if not (top or bottom or left or right):
        return image, None
    sx, sy = image.width / w, image.height / h
    mx, my = MARGIN * image.width, MARGIN * image.height
    box = (round(left * sx + (mx if left else 0)), round(top * sy + (my if top else 0)),
           round((w - right) * sx - (mx if right else 0)), round((h - bottom) * sy - (my if bottom else 0)))
    return image.crop(box), box


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
