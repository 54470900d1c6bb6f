"""Read a file once, hash its bytes, decode it once, and run every enabled method on that image.

This is the CPU-bound stage; `fingerprint_file` is what worker processes run, so it takes only
picklable arguments and returns a `Photo` or a `SkipFile`, never raising for a bad file.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from stat import S_ISREG
from typing import BinaryIO

import numpy as np
from PIL import Image

from dupwatch.borders import unbordered
from dupwatch.canvas import framed, straightened
from dupwatch.decode import decode
from dupwatch.errors import SkipFile
from dupwatch.keeper import header_of
from dupwatch.methods.base import Method, Options, small_gray
from dupwatch.methods.registry import get_method
from dupwatch.quiet import quiet
from dupwatch.record import FileStat, Photo
from dupwatch.walk import not_a_file

# A file bigger than this is not read (scan.max_file_mb's default): above every camera's raw file.
DEFAULT_MAX_FILE_MB = 300
# The content hash reads the file in pieces of this size, never all of it at once.
CHUNK = 2**20
# An image smaller than this on a side (borders cut off), or with less detail than this at 32×32
# (the spread of its grey levels, in grey levels, once a smooth surface is taken out), carries no
# pattern: an icon, a flat swatch or gradient, a star field (its stars are single pixels, and a
# glow over its horizon is a smooth surface). It would "match" any image of the same shape or
# tone, so only its exact copies are looked for.
MIN_CONTENT = 48
MIN_DETAIL = 4.0
# A photo left smaller than this on a side once its borders are cut off is decoded again, with
# its short side at least this long: the cut is then right to within about a pixel of the
# fingerprint's grid even when the photo is a small part of the picture (a product on a plain
# backdrop, a page's text block). Most files are never decoded twice: a camera's photo, at an
# eighth of its size, is larger than this already.
DECODED = 256


@dataclass(frozen=True)
class Plan:
    """Which methods to fingerprint with; picklable, so it can travel to worker processes."""

    methods: tuple[str, ...]
    options: Options = field(default_factory=Options)
    max_file_mb: int = DEFAULT_MAX_FILE_MB  # scan.max_file_mb: larger files are skipped unread

    @property
    def instances(self) -> tuple[Method, ...]:
        return instances(self.methods, self.options)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.instances)

    @property
    def signature(self) -> str:
        """Names the set of fingerprints a file has; a different plan means fingerprint again."""
        return ",".join(sorted(set(self.keys)))


@cache
def instances(names: tuple[str, ...], options: Options = Options()) -> tuple[Method, ...]:  # noqa: B008
    return tuple(get_method(name, options=options) for name in names)


def open_file(path: str, max_file_mb: int = DEFAULT_MAX_FILE_MB) -> tuple[BinaryIO, FileStat]:
    """`path` open for reading, if it is a regular file no larger than `max_file_mb`.

    Nothing but a regular file is ever opened: a FIFO would block the open or the read forever,
    and opening a device can do things (a tape rewinds, a watchdog arms). The type is checked
    before the open (links followed: the walk decides which links are taken, and a link named
    on the command line is taken), and again on the open descriptor, which is opened without
    blocking in case a FIFO took the file's place in between.
    """
    try:
        _check(path, os.stat(path), max_file_mb)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise SkipFile(path, "vanished before it could be read") from None
    except PermissionError:
        raise SkipFile(path, "permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SkipFile(path, "symlink loop") from None
        if exc.errno == errno.ENXIO:
            raise SkipFile(path, "a socket, not a photo file") from None
        raise SkipFile(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        _check(path, st, max_file_mb)
        # Reads from a regular file never block; clear the flag all the same for the readers.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), FileStat.of(st)
    except BaseException:
        os.close(fd)
        raise


def _check(path: str, st: os.stat_result, max_file_mb: int) -> None:
    if not S_ISREG(st.st_mode):
        raise SkipFile(path, not_a_file(st.st_mode))
    if st.st_size > max_file_mb * 2**20:
        raise SkipFile(path, f"file too large ({_size(st.st_size)}; scan.max_file_mb is {max_file_mb})")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def read(path: str, max_file_mb: int = DEFAULT_MAX_FILE_MB) -> tuple[bytes, FileStat]:
    """The whole of a regular file, when it is no larger than `max_file_mb` (see `open_file`)."""
    f, st = open_file(path, max_file_mb)
    with f:
        try:
            data = f.read(max_file_mb * 2**20 + 1)
        except OSError as exc:
            raise SkipFile(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_file_mb * 2**20:
        raise SkipFile(path, f"file too large (grew past scan.max_file_mb, {max_file_mb})")
    return data, st


def read_image(path: str, size: int, grey: bool = False) -> Image.Image | None:
    """The image in the file at `path`, decoded with its short side at `size` or more (upright,
    as it is shown); None when it cannot be read now. For a second look at a file already
    indexed: the reason it cannot be read was told when it was."""
    try:
        data, _ = read(path)
        with quiet(path):
            return decode(path, data, size, grey).image
    except (SkipFile, OSError):
        return None


def content_hash(path: str, f: BinaryIO) -> bytes:
    """sha256 of the file from where it is open, read a piece at a time."""
    digest = hashlib.sha256()
    try:
        while piece := f.read(CHUNK):
            digest.update(piece)
    except OSError as exc:
        raise SkipFile(path, f"cannot read: {exc.strerror or exc}") from None
    return digest.digest()


def fingerprint_bytes(path: str, data: bytes | BinaryIO, stat: FileStat, plan: Plan) -> Photo:
    """Every fingerprint of `path`, from its bytes or from the file open at its start."""
    methods = plan.instances
    grey = not any(m.needs_colour for m in methods)
    size = max(m.needs_size for m in methods)
    if isinstance(data, bytes):
        digest = hashlib.sha256(data).digest()
    else:
        digest = content_hash(path, data)
        data.seek(0)
    with quiet(path):
        decoded = decode(path, data, size, grey)
    image, turned = the_photo(decoded.image, size)
    if not turned and min(image.size) < DECODED and image.size != decoded.image.size \
            and decoded.image.width < decoded.width:
        if not isinstance(data, bytes):
            data.seek(0)
        with quiet(path):
            decoded = decode(path, data, DECODED, grey)
        image, turned = the_photo(decoded.image, size)
    return Photo(
        path=path,
        stat=stat,
        content_hash=digest,
        width=decoded.width,
        height=decoded.height,
        turned=turned,
        fingerprints={m.key: m.to_bytes(m.fingerprint(image)) for m in methods if not m.batched},
        pending={m.key: m.prepare(image) for m in methods if m.batched},
        exact_only=plain(image, decoded.width / decoded.image.width),
        pixels=own_pixels(image, turned, decoded.image.size, (decoded.width, decoded.height)),
        header=header_of(path, data),
    )


def own_pixels(photo: Image.Image, turned: float, shown: tuple[int, int], full: tuple[int, int]) -> int:
    """The photo's own pixels at the file's full size (`full`), from `photo`, what `the_photo` cut
    out of the decoded image (of size `shown`)."""
    if not turned:  # its borders or an app's frame cut off, at the decode's scale
        return round(photo.width * photo.height * full[0] * full[1] / (shown[0] * shown[1]))
    # Turned back off a canvas (and shrunk): the photo, w = r × h, turned by `turned`, fits the
    # frame, w|cos| + h|sin| by w|sin| + h|cos|.
    r = photo.width / photo.height
    c, s = abs(math.cos(math.radians(turned))), abs(math.sin(math.radians(turned)))
    h = min(full[0] / (r * c + s), full[1] / (r * s + c))
    return round(r * h * h)


def the_photo(image: Image.Image, size: int) -> tuple[Image.Image, float]:
    """What every method sees of a decoded image, and how far it was turned on a canvas: a photo
    turned onto a canvas turned back and cut out, else its borders (padding, letterboxing, a
    plain backdrop) cut off."""
    image, turned = straightened(image, size)
    if not turned:
        image, box = unbordered(image)
        if box is not None:
            # A screenshot padded to a square is phone-shaped again once the padding is off: the
            # app's frame comes off then, as it does when nothing padded it.
            image = framed(image) or image
    return image, turned


def plain(image: Image.Image, scale: float = 1.0) -> str | None:
    """Why `image` (decoded at 1/`scale` of the file's size) is too small or too plain to compare
    by its content, if it is."""
    width, height = round(image.width * scale), round(image.height * scale)
    if min(width, height) < MIN_CONTENT:
        return f"too small to compare ({width}×{height} pixels)"
    if detail(np.asarray(small_gray(image, 32))) < MIN_DETAIL:
        return "too plain to compare (no detail at 32×32)"
    return None


def detail(grid: np.ndarray, beyond: float = 0.0) -> float:
    """The spread of a square grey grid's levels once a smooth surface is taken out; with
    `beyond`, without that share of its cells where the detail is densest (one patch: the cells
    with the most detail around them, each cell's squared residual averaged over its 3×3
    neighbourhood), the surface fitted to the rest again. A photo with detail in one patch only
    is a plain field carrying one thing: a caption on a star field, a moon in a dark sky."""
    side = grid.shape[0]
    grey = np.asarray(grid, dtype=np.float64).ravel()
    surface = _smooth(side)
    residual = grey - surface @ (surface.T @ grey)
    if not beyond:
        return float(np.std(residual))
    energy = np.pad((residual * residual).reshape(side, side), 1, mode="edge")
    around = np.sum([energy[i:i + side, j:j + side] for i in range(3) for j in range(3)], axis=0).ravel()
    dense = round(grey.size * beyond)
    rest = around < np.partition(around, -dense)[-dense]
    kept = surface[rest]
    fit = np.linalg.solve(kept.T @ kept, kept.T @ grey[rest])  # six unknowns: a 6×6 solve
    return float(np.std(grey[rest] - kept @ fit))


@cache
def _smooth(side: int) -> np.ndarray:
    """An orthonormal basis (side² × 6) of the smooth surfaces over a side×side grid: a level,
    two slopes and three curvatures (what a gradient, a glow or a vignette is made of)."""
    y, x = (a.ravel() / (side - 1) - 0.5 for a in np.mgrid[0:side, 0:side].astype(np.float64))
    basis, _ = np.linalg.qr(np.stack([np.ones_like(x), x, y, x * x, y * y, x * y]).T)
    return basis


def complete(photos: Sequence[Photo], plan: Plan) -> list[Photo]:
    """Run the batched methods (the CNN) over many photos at once, in this process."""
    done = {m.key: m for m in plan.instances if m.batched}
    if not done or not photos or not any(p.pending for p in photos):
        return list(photos)
    results = [dict(p.fingerprints) for p in photos]
    for key, method in done.items():
        vectors = method.fingerprint_batch([p.pending[key] for p in photos])
        for fingerprints, vector in zip(results, vectors, strict=True):
            fingerprints[key] = method.to_bytes(vector)
    return [replace(p, fingerprints=f, pending={}) for p, f in zip(photos, results, strict=True)]


def fingerprint_now(path: str, plan: Plan) -> Photo:
    """One file, fully fingerprinted here and now (for query, compare and stale candidates)."""
    result = fingerprint_file(path, plan)
    if isinstance(result, SkipFile):
        raise result
    return complete([result], plan)[0]


def fingerprint_files(paths: Sequence[str], plan: Plan) -> list[Photo | SkipFile]:
    """A chunk of files, batched methods included: what a worker runs when the CNN is on.

    Each worker then decodes a chunk and embeds it with one torch thread, and the two workers
    take turns on the cores by themselves; decoding in workers beside a multi-threaded model in
    the main process left both fighting for the same two cores.
    """
    results = [fingerprint_file(path, plan) for path in paths]
    done = iter(complete([r for r in results if isinstance(r, Photo)], plan))
    return [r if isinstance(r, SkipFile) else next(done) for r in results]


def fingerprint_file(path: str, plan: Plan) -> Photo | SkipFile:
    stat = None
    try:
        f, stat = open_file(path, plan.max_file_mb)
        with f:
            if stat.size == 0:
                raise SkipFile(path, "empty file", lasting=True)
            return fingerprint_bytes(path, f, stat, plan)
    except SkipFile as skip:
        if skip.lasting and stat is not None:
            skip.seen = (stat.size, stat.mtime_ns)
        return skip
