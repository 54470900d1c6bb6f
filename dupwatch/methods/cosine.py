"""Cosine similarity of small luminance pixel vectors, tolerant of crops, overlays and vignettes.

Each vector has its mean removed before the cosine, which makes the score blind to brightness
offsets and contrast scaling (it is then the Pearson correlation of the two images). A plain
cosine of raw, all-positive pixel values scores any two photos above 0.9, so it cannot tell a
copy from a stranger; the centred one can. The vector's radial profile (how much brighter the
middle is than the corners) is removed the same way, so a vignette added or taken away does not
count either.

The fingerprint is 32×32 grey levels. A pair is compared at 24×24 several times, each time with
one side zoomed in by 0 to 10 % per border, and the best cosine wins: a copy with its borders
trimmed then lines up with its original.

An overlay (a caption box, a sticker, a date stamp) changes a few cells completely and costs the
cosine more than any other edit. So the cosine is taken a second time without the cells where
the two images disagree most (`OCCLUDED`): a copy under an overlay then scores as if it had none.
An overlay is one patch, so the disagreement is first averaged over each cell's 3×3
neighbourhood: the patch stands out whole, while the scattered differences of two different
photos blur away. Dropping the worst cells still flatters two different photos a little, by about
as much as `OCCLUSION_COST`, which is taken off that second score; the better of the two counts.

Cells near white or near black in *both* images are left out: one app's screens, one backdrop,
one page's margins say nothing about whether the photos in them are the same. When fewer than a
tenth of the cells would be left (a product on white, a screenshot, a night photo), every cell
counts instead: such photos used to score 0.000 against their own copies. Borders, padding and
the black corners of a turned photo are cut off before any fingerprint (`borders.py`,
`canvas.py`). `benchmarks/accuracy.py` and `benchmarks/presets.py` measure the margins.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
from PIL import Image

from dupwatch.methods.base import Method, Options, small_gray, unwanted

STORED = 32
COMPARED = 24
ZOOMS = (0.0, 0.025, 0.05, 0.075, 0.1)
DARK, LIGHT = 20, 235  # grey levels at or past which a cell shared by both images says nothing...
MIN_CELLS = COMPARED * COMPARED // 10  # ...unless fewer cells than this would be left
OCCLUDED = 0.15  # the share of cells an overlay may cover and still be looked past...
OCCLUSION_COST = 0.045  # ...at this cost to the score


@cache
def _zoom_maps() -> np.ndarray:
    """Each zoom's bilinear crop-and-resize along one axis, as a matrix (zooms, 24, 32).

    Pillow resizes one axis, then the other, so a zoomed image is `R @ G @ R.T`. Each column
    of R is read off Pillow itself (an image whose column k is 1), and a whole batch of
    candidates is then zoomed by two small matrix products instead of Pillow calls per image.
    """
    maps = np.zeros((len(ZOOMS), COMPARED, STORED), dtype=np.float32)
    for k in range(STORED):
        column = np.zeros((STORED, STORED), dtype=np.float32)
        column[:, k] = 1.0
        image = Image.fromarray(column, "F")
        for z, zoom in enumerate(ZOOMS):
            lo, hi = STORED * zoom, STORED * (1.0 - zoom)
            small = image.resize((COMPARED, COMPARED), Image.Resampling.BILINEAR, box=(lo, lo, hi, hi))
            maps[z, :, k] = np.asarray(small, dtype=np.float32)[0]
    return maps


def _cosines(x: np.ndarray, y: np.ndarray, xc: np.ndarray, yc: np.ndarray,
             overlay: bool = False) -> np.ndarray:
    """The score of each vector (last axis) of `x` with the same one of `y`, broadcast against
    each other; `xc` and `yc` are them less what the score ignores (`_plain`). With `overlay`,
    the better of that and the score without the cells that differ most."""
    cells = x.shape[-1]
    # A flat image (spread under 0.1 grey level: rounding noise) has no pattern to compare,
    # and scores 0 against anything.
    ok = (_dot(xc, xc) > 0.01 * cells) & (_dot(yc, yc) > 0.01 * cells)
    if not overlay:
        return _whole(x, y, xc, yc, ok)
    keep = _kept(x, y)
    whole = _cosine(xc, yc, keep, ok)
    # The same without the cells where the two differ most, each side scaled to unit length.
    xs, ys = _centred(xc, keep), _centred(yc, keep)
    lx = np.sqrt(np.maximum(_dot(xs, xs), 1e-12))[..., None]
    ly = np.sqrt(np.maximum(_dot(ys, ys), 1e-12))[..., None]
    apart = np.where(keep, _patches(np.abs(xs / lx - ys / ly)), np.inf)
    kept = (keep.sum(axis=-1) - np.round(keep.sum(axis=-1) * OCCLUDED)).astype(np.intp)
    past = _cosine(x, y, apart <= _nth(apart, kept - 1), ok) - OCCLUSION_COST
    best: np.ndarray = np.maximum(whole, past)
    return best


def _kept(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The cells each pair's score counts. Cells white or black in both say nothing (one app's
    screens, one backdrop): left out, unless too few would be left, as in a bright or dark
    photo, where every cell counts."""
    keep = ~(((x <= DARK) & (y <= DARK)) | ((x >= LIGHT) & (y >= LIGHT)))
    keep[keep.sum(axis=-1) < MIN_CELLS] = True
    return keep


def _whole(x: np.ndarray, y: np.ndarray, xc: np.ndarray, yc: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """`_cosine` over `_kept`'s cells, the mask made only for the pairs that need one: where
    either image has no cell near white or black, every cell counts, and the score is three
    dot products over the vectors as they are broadcast, with nothing masked or copied."""
    every = ~_extreme(x) | ~_extreme(y)
    whole = _cosine(xc, yc, None, ok)
    if not every.all():
        some = ~every
        xs, ys, xcs, ycs, oks = (np.broadcast_to(v, (*every.shape, *v.shape[every.ndim:]))[some]
                                 for v in (x, y, xc, yc, ok))
        whole[some] = _cosine(xcs, ycs, _kept(xs, ys), oks)  # `_cosine`'s own array: written in place
    return whole


def _extreme(x: np.ndarray) -> np.ndarray:
    """Whether each vector has a cell near white or black."""
    return np.asarray(((x <= DARK) | (x >= LIGHT)).any(axis=-1))


def _nth(values: np.ndarray, nth: np.ndarray) -> np.ndarray:
    """Each vector's (last axis) nth smallest value, as a sort would give it, by a partition per
    distinct nth (mostly one: every cell kept), not a sort of every row."""
    out = np.empty((*values.shape[:-1], 1), dtype=values.dtype)
    for n in set(nth.ravel().tolist()):  # not np.unique: it imports numpy.ma, slow for a query
        rows = nth == n
        out[rows] = np.partition(values[rows], int(n), axis=-1)[..., int(n), None]
    return out


def _patches(cells: np.ndarray) -> np.ndarray:
    """Each cell of each 24×24 grid (a vector, last axis) as the mean of its 3×3 neighbourhood."""
    grid = cells.reshape(*cells.shape[:-1], COMPARED, COMPARED)
    # A 3×3 box is a 3-row box of a 3-column box: four sums of shifted views, not eight, with
    # the edge cells repeated past the border.
    padded = np.concatenate([grid[..., :1, :], grid, grid[..., -1:, :]], axis=-2)
    rows = padded[..., :-2, :] + padded[..., 1:-1, :] + padded[..., 2:, :]
    padded = np.concatenate([rows[..., :1], rows, rows[..., -1:]], axis=-1)
    total = padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]
    mean: np.ndarray = (total / 9).reshape(cells.shape)
    return mean


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The dot product of each vector (last axis) of `x` with the same one of `y`."""
    dot: np.ndarray = np.einsum("...i,...i->...", x, y)
    return dot


def _plain(x: np.ndarray) -> np.ndarray:
    """Vectors less their mean and radial profile."""
    basis = unwanted(COMPARED)
    plain: np.ndarray = x - (x @ basis) @ basis.T
    return plain


def _centred(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Each vector of `x` less its mean over the kept cells, and 0 in the others."""
    # In the vectors' own precision: float64 doubles the cost of everything after.
    mean = np.where(keep, x, 0).sum(axis=-1) / np.maximum(keep.sum(axis=-1, dtype=x.dtype), 1)
    return np.where(keep, x - mean[..., None], 0.0)


def _cosine(x: np.ndarray, y: np.ndarray, keep: np.ndarray | None, ok: np.ndarray) -> np.ndarray:
    """The cosine of each pair of vectors over its kept cells (None: all), centred there (from
    weighted sums: no masked copies of the vectors are made)."""
    if keep is None:
        n, wx, wy = np.asarray(float(x.shape[-1])), x, y
    else:
        w = keep.astype(x.dtype)
        n = np.maximum(w.sum(axis=-1), 1.0)
        wx, wy = w * x, w * y
    sx, sy = wx.sum(axis=-1), wy.sum(axis=-1)
    sxy = _dot(wx, y) - sx * sy / n
    sxx = _dot(wx, x) - sx * sx / n
    syy = _dot(wy, y) - sy * sy / n
    norm = np.sqrt(np.maximum(sxx, 0.0) * np.maximum(syy, 0.0))
    ok = ok & (norm > 1e-6 * n)
    return np.where(ok, sxy / np.where(ok, norm, 1.0), 0.0)


class Cosine(Method):
    name = "cosine"
    summary = "cosine of centred 32×32 luminance, best of 5 zooms, an overlay looked past"
    default_threshold = 0.93
    strict_threshold, loose_threshold = 0.97, 0.92
    shape = (STORED, STORED)

    def __init__(self, options: Options | None = None, *, overlay: bool = True) -> None:
        super().__init__(options)
        # Without the look past an overlay, which is half the cost of a score: for a scorer
        # that keeps only scores above what that look can give (1 - OCCLUSION_COST).
        self.overlay = overlay

    def fingerprint(self, image: Image.Image) -> np.ndarray:
        return np.asarray(small_gray(image, STORED), dtype=np.uint8)

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        return self.compare_many(a, [b])[0]

    def compare_many(self, a: np.ndarray, others: Sequence[np.ndarray]) -> list[float]:
        return self.compare_pairs([a] * len(others), others)

    def compare_pairs(self, mine: Sequence[np.ndarray], others: Sequence[np.ndarray]) -> list[float]:
        if not others:
            return []
        # A photo against its candidates, or its seven turns against theirs: the same few grids
        # again and again, each zoomed once.
        slot: dict[int, int] = {}
        ours = np.array([slot.setdefault(id(m), len(slot)) for m in mine], dtype=np.intp)
        distinct = {id(m): m for m in mine}
        scores = _scores(np.stack(list(distinct.values())), ours, np.stack(others), self.overlay)
        return [float(s) for s in np.clip(scores, 0.0, 1.0)]


def _zoomed(images: np.ndarray) -> np.ndarray:
    """Every image (m × 32 × 32) at every zoom, as vectors: (zooms, m, 24²). A zoom is `R @ G @ R.T`
    (`_zoom_maps`); done as two large matrix products rather than zooms × m small ones."""
    maps = _zoom_maps()
    zooms, m = len(ZOOMS), len(images)
    # Each image's rows through every zoom's R: (m·32, 32) @ (32, zooms·24).
    rows = images.reshape(m * STORED, STORED) @ _zoom_rows()
    # Then its columns: per zoom, R (24 × 32) @ (32, m·24), one plain matrix product each (a
    # stacked product of all five takes numpy's slower path).
    rows = rows.reshape(m, STORED, zooms, COMPARED).transpose(2, 1, 0, 3).reshape(zooms, STORED, m * COMPARED)
    both = np.stack([maps[z] @ rows[z] for z in range(zooms)]).reshape(zooms, COMPARED, m, COMPARED)
    zoomed: np.ndarray = both.transpose(0, 2, 1, 3).reshape(zooms, m, COMPARED * COMPARED)
    return zoomed


@cache
def _zoom_rows() -> np.ndarray:
    """Every zoom's R, transposed side by side: (32, zooms·24), contiguous for the product."""
    return np.ascontiguousarray(_zoom_maps().reshape(len(ZOOMS) * COMPARED, STORED).T)


def _scores(a: np.ndarray, ours: np.ndarray, b: np.ndarray, overlay: bool = True) -> np.ndarray:
    """The score of each `a[ours[i]]` with `b[i]` (images 32 × 32), all pairs in a few array
    passes; each of a's images is zoomed once, however many of b's it is scored against."""
    n, k = len(b), len(a)
    # cells[z, i]: image i zoomed by ZOOMS[z]; a's images first, then b's.
    cells = _zoomed(np.concatenate([a, b]).astype(np.float32))
    plain = _plain(cells)
    # One image of a's against all of b's is broadcast, not copied n times.
    mine_cells, mine_plain = (cells[:, :1], plain[:, :1]) if k == 1 else (cells[:, ours], plain[:, ours])
    # Every zoom of one side against the other as it is.
    scores = np.concatenate([_cosines(mine_cells, cells[:1, k:], mine_plain, plain[:1, k:]),
                             _cosines(mine_cells[:1], cells[1:, k:], mine_plain[:1], plain[1:, k:])])
    mine = np.array([*range(len(ZOOMS)), *[0] * (len(ZOOMS) - 1)])
    theirs = np.array([*[0] * len(ZOOMS), *range(1, len(ZOOMS))])
    if not overlay:
        best_zoom: np.ndarray = scores.max(axis=0)
        return best_zoom
    # Then the look past an overlay (the costly part: ranking every cell) only as they are and
    # at each pair's best zoom. An overlay spoils the cosine so much that the best zoom is then
    # no guide.
    chosen = np.argmax(scores, axis=0)
    rows, unzoomed = np.tile(np.arange(n), 2), np.zeros(n, dtype=np.intp)
    x = np.concatenate([mine[chosen], unzoomed]), np.tile(ours, 2)
    y = np.concatenate([theirs[chosen], unzoomed]), rows + k
    past = _cosines(cells[x], cells[y], plain[x], plain[y], overlay=True)
    best: np.ndarray = np.maximum(scores.max(axis=0), np.maximum(past[:n], past[n:]))
    return best
