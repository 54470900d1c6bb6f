"""Photos turned onto a canvas: found, turned back upright and cut out, before any fingerprint.

An editor that turns a photo by 10° or 25° fills the four corners it leaves with pure black (or
white); a print scanned askew on a lid that scans pure white is the same case (an off-white or
noisy lid is not taken for a canvas: no real scans were at hand to tune for). Every method sees
the canvas as much as the photo: a hash or a pixel grid of the turned copy is nothing like its
original's, and two *different* photos turned the same way look alike (their black triangles
match). So the pipeline turns such a photo back and cuts it out of its canvas once, right after
decoding, and every method fingerprints the photo itself (`fingerprint.fingerprint_bytes`).

The canvas is the runs of flat fill that reach in from the image's edges, starting at a corner
(`canvas`). What is left must be a turned rectangle: the photo's edge runs along at least 75 %
of the smallest rectangle around it, found here by turning the outline's points in 0.5° and then
0.05° steps (rotating calipers would do it exactly; this is plain numpy and well within the 0.1°
the cut needs). A photo whose dark or bright corners are its own (a night sky, a retina scan on
black) is not a rectangle and is left as it is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

CANVAS_DARK, CANVAS_BRIGHT = 12, 243  # a canvas corner is this dark or this bright...
CANVAS_FLAT = 2.0  # ...and this flat (grey-level standard deviation)
CANVAS_TOLERANCE = 6  # grey levels from the corner's value that are still canvas...
# ...or, when a photo to turn back is not found with that, this many: a JPEG (quality 50–90)
# rings up to about 15 levels into a black canvas along the photo's edge.
STRAIGHTEN_TOLERANCE = 16
FIND_SIDE = 256  # the canvas is found on a thumbnail this size
MIN_CANVAS = 0.03  # the photo leaves at least this much of the image as canvas (a 1° turn: 4 %)
MIN_PHOTO = 0.25  # and covers at least this much of it
# This much of the turned bounding rectangle's outline is the photo's own straight edge. Not its
# area: a photo's own black (a night sky) joins the canvas where they touch and eats into it.
# Measured on the test photos turned by 17° and saved as JPEG at quality 50–90: 0.86 or more;
# astronaut, whose black space joins the canvas along a fifth of its edge, 0.80–0.82; retina, a
# disc on black, 0.21.
EDGES = 0.75
MARGIN = 0.02  # trimmed from each side of the cut-out: the turn blended its edges


def canvas(rgb: np.ndarray, tolerance: int = CANVAS_TOLERANCE) -> np.ndarray:
    """Where an (h, w, 3) uint8 image shows a flat black or white canvas, not the photo.

    A turning tool fills the four corners with pure black (or white); those triangles touch the
    image's edges, so every row that crosses one meets it as a run of fill from the left or the
    right edge. Only corners that are such fill start a run; a photo whose corners are anything
    else (sky, shadow, texture) has no canvas.
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
        fill = np.abs(grey - value) <= tolerance
        if not from_left:
            fill = fill[:, ::-1]
        run = np.where(fill.all(axis=1), w, np.argmin(fill, axis=1))  # fill pixels from the edge
        inside = cols[None, :] < run[:, None]
        out |= inside if from_left else inside[:, ::-1]
    return out


def straightened(image: Image.Image, min_size: int = FIND_SIDE) -> tuple[Image.Image, float]:
    """`image` turned back upright and cut out of its canvas, and by how many degrees it had been
    turned (counter-clockwise as shown); `image` itself and 0.0 when it is not on a canvas.

    The turn is made on a copy shrunk to about twice `min_size` (the short side the methods
    need): turning costs in proportion to the pixels. Turns past 45° come back as the nearest
    quarter turn (a sideways photo on its canvas).
    """
    shown = framed(image)
    if shown is not None:
        return shown, 0.0
    if _flat_corners(image) < 2:
        return image, 0.0  # nearly every photo: four 3×3 crops and done
    small = np.asarray(_shrunk(image, FIND_SIDE).convert("RGB"))
    # The exact fill first (it leaves a photo's own near-black alone), then as much as a JPEG's
    # ringing needs.
    for tolerance in (CANVAS_TOLERANCE, STRAIGHTEN_TOLERANCE):
        found = _photo_rectangle(~canvas(small, tolerance))
        if found is not None:
            break
    else:
        return image, 0.0
    photo, turn = found
    mask = Image.fromarray(photo.astype(np.uint8) * 255).rotate(-turn, expand=True)
    box = mask.getbbox()
    if box is None:
        return image, 0.0
    work = _shrunk(image, max(FIND_SIDE, 2 * min_size))
    upright = work.rotate(-turn, resample=Image.Resampling.BILINEAR, expand=True)
    left, top, right, bottom = box
    sx, sy = upright.width / mask.width, upright.height / mask.height
    mx, my = MARGIN * (right - left), MARGIN * (bottom - top)
    cut = upright.crop((round((left + mx) * sx), round((top + my) * sy),
                        round((right - mx) * sx), round((bottom - my) * sy)))
    return cut, turn


def _photo_rectangle(photo: np.ndarray) -> tuple[np.ndarray, float] | None:
    """`photo` (True where the photo is) and its turn, if it is a turned rectangle on a canvas."""
    if photo.mean() > 1 - MIN_CANVAS or photo.mean() < MIN_PHOTO:
        return None
    fit = _turned_rectangle(photo)
    if fit is None:
        return None
    turn, area, edges = fit
    if not MIN_PHOTO * photo.size <= area <= (1 - MIN_CANVAS) * photo.size:
        return None  # dark patches at the edges of a photo that fills the image, say
    if edges < EDGES:
        return None  # not a rectangle: the dark or bright surround is the photo's own
    return photo, turn


def _flat_corners(image: Image.Image) -> int:
    """How many corners are flat black or white. A turn leaves four, a print scanned askew into
    a corner of the lid three; of the 104 shared photos, 14 have one of their own, none two."""
    w, h = image.size
    flat = 0
    for left, top in ((0, 0), (w - 3, 0), (0, h - 3), (w - 3, h - 3)):
        corner = np.asarray(image.crop((left, top, left + 3, top + 3)).convert("L"), dtype=np.float32)
        flat += bool(corner.std() <= CANVAS_FLAT and not CANVAS_DARK < corner.mean() < CANVAS_BRIGHT)
    return flat


def _turned_rectangle(photo: np.ndarray) -> tuple[float, float, float] | None:
    """The smallest rectangle around the True pixels of `photo`: the angle (degrees, counter-
    clockwise as shown, within ±45°) its sides are turned by, its area in pixels, and the share
    of its outline along which `photo` has an edge (1 for a turned rectangle, about 0 for a
    disc, which touches it at four points)."""
    inner = photo.copy()
    inner[1:-1, 1:-1] &= photo[:-2, 1:-1] & photo[2:, 1:-1] & photo[1:-1, :-2] & photo[1:-1, 2:]
    ys, xs = np.nonzero(photo & ~inner)  # the outline
    if len(xs) < 8:
        return None
    # Pixel centres, and each pixel's far corner, so that the box spans whole pixels.
    x = np.concatenate([xs, xs + 1.0]) - xs.mean()
    y = np.concatenate([ys, ys + 1.0]) - ys.mean()

    def area(degrees: np.ndarray) -> np.ndarray:
        # Rows grow downwards: turning the points clockwise in (x, y) by the photo's own
        # counter-clockwise turn as shown lines its sides up with the axes.
        theta = np.radians(degrees)[:, None]
        u = x * np.cos(theta) - y * np.sin(theta)
        v = x * np.sin(theta) + y * np.cos(theta)
        spans: np.ndarray = np.ptp(u, axis=1) * np.ptp(v, axis=1)
        return spans

    coarse = np.arange(-45.0, 45.0, 0.5)
    best = float(coarse[np.argmin(area(coarse))])
    fine = best + np.arange(-0.5, 0.5001, 0.05)
    spans = area(fine)
    i = int(np.argmin(spans))
    theta = np.radians(fine[i])
    u = x * np.cos(theta) - y * np.sin(theta)
    v = x * np.sin(theta) + y * np.cos(theta)
    covered = 0
    for along, across in ((v, u), (u, v)):  # the two sides across u, then the two across v
        for side in (across.min(), across.max()):
            on = np.abs(across - side) <= 2.5  # a JPEG's edge wanders a pixel or two
            covered += 2 * len(np.unique(np.floor(along[on] / 2)))  # 2-pixel steps of it reached
    perimeter = 2 * (np.ptp(u) + np.ptp(v))
    return (float(fine[i]) + 45.0) % 90.0 - 45.0, float(spans[i]), float(covered / perimeter)


def _shrunk(image: Image.Image, side: int) -> Image.Image:
    """At most about `side` on the long side, by box averaging: a tenth of a resize's cost."""
    return image.reduce(max(1, max(image.size) // side))


# --- A photo shown on a phone's screen ---------------------------------------------------------
#
# A screenshot of a photo in an app (a gallery, a chat, a social feed) is the photo, smaller, on
# the app's flat background between bars, buttons and lines of text. Every method would see the
# app as much as the photo, and two different photos in one app's frame alike. So a screenshot's
# photo is cut out before any fingerprint, as a turned photo is cut out of its canvas.
#
# Only phone-shaped images are looked at (a photo is rarely that long and narrow). The app's
# background is the commonest colour; text and icons are thin and go in a morphological opening
# of what is not background, bars reach an edge of the screen; what is left is the photo: a
# block of rows holding a solid rectangle of not-background, background right above and below.

SCREEN_ASPECT = 1.7  # long side / short side of a phone's screen or more (16:9 is 1.78)
SCREEN_SIDE = 512  # the photo is looked for on a thumbnail this size
SCREEN_TOLERANCE = 6  # grey levels from the background's that are background
SCREEN_BACKGROUND = 0.25  # the background covers at least this much of the screen
SCREEN_OPEN = 1 / 12  # of the short side: text and icons thinner than this are not the photo
SCREEN_PHOTO = 0.08  # the photo covers at least this much of the screen
SCREEN_SOLID = 0.6  # of the photo's rectangle is not background (a photo's own white sky may be)
SCREEN_CLEAR = 0.9  # of the lines around the photo are background
SCREEN_MARGIN = 0.01  # trimmed from each side of the cut-out: its edge was resampled
VIGNETTE_RINGS = 16  # rings of equal r² a vignette's gain is read off, centre to corners
VIGNETTE_SHARE = 0.3  # of a ring at its commonest level (give or take SCREEN_TOLERANCE): background
VIGNETTE_LEAST = 0.1  # the corners darker than the centre by this share of it, or no vignette


def framed(image: Image.Image) -> Image.Image | None:
    """The photo a screenshot shows, cut out of `image`; None when `image` is not a screenshot of
    a photo."""
    w, h = image.size
    if max(w, h) < SCREEN_ASPECT * min(w, h) or min(w, h) < 64:
        return None
    # At most SCREEN_SIDE on the long side, whatever the screenshot's own size, so that every copy
    # of one screen is looked at near one scale: a half-size JPEG copy was looked at whole (780
    # px, where `_shrunk` stops short of halving it) and the ringing around the app's text broke
    # up its background; its original was looked at a third of its size.
    small = image.reduce(max(1, -(-max(image.size) // SCREEN_SIDE))).convert("L")
    grey = np.asarray(small, dtype=np.int16)
    # A screen lying on its side (a copy turned by a quarter) is looked at upright: its bars and
    # the rows around the photo are columns.
    upright = grey.T if w > h else grey
    found = _shown(upright)
    if found is None:
        # A vignette darkens a light background towards the corners past any one grey level:
        # the screen is looked at again with that darkening undone.
        even = _undarkened(upright)
        found = None if even is None else _shown(even)
    if found is None:
        return None
    top, bottom, left, right = found if w <= h else (found[2], found[3], found[0], found[1])
    sx, sy = w / grey.shape[1], h / grey.shape[0]
    mx, my = SCREEN_MARGIN * (right - left), SCREEN_MARGIN * (bottom - top)
    return image.crop((round((left + mx) * sx), round((top + my) * sy),
                       round((right - mx) * sx), round((bottom - my) * sy)))


def _shown(grey: np.ndarray) -> tuple[int, int, int, int] | None:
    """Where the photo is on a screen in grey levels: its background is the commonest level."""
    counts = np.bincount(grey.ravel(), minlength=256)
    background = int(np.argmax(counts))
    flat = np.abs(grey - background) <= SCREEN_TOLERANCE
    if flat.mean() < SCREEN_BACKGROUND:
        return None
    return _shown_rectangle(~flat)


def _undarkened(grey: np.ndarray) -> np.ndarray | None:
    """`grey` with a vignette undone (a gain of 1 - a·r², r from the centre to the corners, the
    frame's own ellipse); None when it has none to undo.

    The gain is read off the background: in each ring, the commonest level (smoothed over a few
    levels) where it holds a good share of the ring; those levels then follow c0 + c1·r² (fitted,
    each ring weighted by that share), and the photo, in the middle rings, holds no one level."""
    h, w = grey.shape
    y, x = np.mgrid[0:h, 0:w]
    r2 = (((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2) / 2
    ring = np.minimum((r2 * VIGNETTE_RINGS).astype(np.intp), VIGNETTE_RINGS - 1)
    cells = (ring * 256 + np.clip(grey, 0, 255)).ravel()
    counts = np.bincount(cells, minlength=VIGNETTE_RINGS * 256).reshape(VIGNETTE_RINGS, 256)
    # Each level's count with its neighbours' up to SCREEN_TOLERANCE either side.
    window = 2 * SCREEN_TOLERANCE + 1
    summed = np.cumsum(np.pad(counts, ((0, 0), (SCREEN_TOLERANCE + 1, SCREEN_TOLERANCE))), axis=1)
    near = summed[:, window:] - summed[:, :-window]
    levels = np.argmax(near, axis=1).astype(np.float64)
    share = near.max(axis=1) / np.maximum(counts.sum(axis=1), 1)
    used = share >= VIGNETTE_SHARE
    if used.sum() < 3:
        return None
    middle = (np.arange(VIGNETTE_RINGS) + 0.5) / VIGNETTE_RINGS
    weights = np.sqrt(share[used])
    design = np.stack([np.ones(int(used.sum())), middle[used]], axis=1) * weights[:, None]
    (c0, c1), *_ = np.linalg.lstsq(design, levels[used] * weights, rcond=None)
    if c0 <= 0 or -c1 / c0 < VIGNETTE_LEAST:
        return None
    gain = np.maximum(1 + (c1 / c0) * r2, 0.2)
    even: np.ndarray = np.clip(np.round(grey / gain), 0, 255).astype(np.int16)
    return even


def _shown_rectangle(busy: np.ndarray) -> tuple[int, int, int, int] | None:
    """Top, bottom, left and right (exclusive) of the photo in a screen's not-background mask."""
    h, w = busy.shape
    k = max(3, round(SCREEN_OPEN * min(h, w))) | 1
    solid = _open(busy, k)
    rows = np.asarray(solid.any(axis=1), dtype=bool)
    best: tuple[int, int] | None = None
    y = 0
    while y < h:  # runs of rows holding something solid; those at an edge are bars
        if not rows[y]:
            y += 1
            continue
        start = y
        while y < h and rows[y]:
            y += 1
        if start > 0 and y < h and (best is None or y - start > best[1] - best[0]):
            best = (start, y)
    if best is None:
        return None
    top, bottom = best
    cols = np.nonzero(solid[top:bottom].any(axis=0))[0]
    left, right = int(cols[0]), int(cols[-1]) + 1
    if (bottom - top) * (right - left) < SCREEN_PHOTO * h * w:
        return None
    if busy[top:bottom, left:right].mean() < SCREEN_SOLID:
        return None
    # A photo's own bright sky may match the background and go in the opening: its rows are
    # taken back up to the first line of background above and below.
    while top > 0 and busy[top - 1, left:right].mean() > 1 - SCREEN_CLEAR:
        top -= 1
    while bottom < h and busy[bottom, left:right].mean() > 1 - SCREEN_CLEAR:
        bottom += 1
    if top == 0 or bottom == h:
        return None  # it runs into a bar: not a photo on the app's background
    # ...and so are the columns beside it, when it does not fill the screen's width.
    for side in (busy[top:bottom, max(0, left - 3):left], busy[top:bottom, right:right + 3]):
        if side.size and 1 - side.mean() < SCREEN_CLEAR:
            return None
    return top, bottom, left, right


def _open(mask: np.ndarray, k: int) -> np.ndarray:
    """Morphological opening of a boolean mask by a k×k square, k odd (numpy only: summed-area
    tables); outside the mask counts as False."""
    r = k // 2

    def window_sums(m: np.ndarray) -> np.ndarray:
        padded = np.pad(m.astype(np.int32), ((r + 1, r), (r + 1, r)))
        table = padded.cumsum(axis=0).cumsum(axis=1)
        sums: np.ndarray = table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]
        return sums

    eroded = window_sums(mask) == k * k
    return window_sums(eroded) > 0
