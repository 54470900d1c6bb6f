"""Which copy of a photo to keep: the group's members compared by a documented order.

A group is every file found to be the same photo (exact copies and near-duplicates, connected).
Its keeper is the best copy by `groups.keep`, an ordered list of criteria: the first criterion
on which two files differ decides between them. A file in a `reference:` folder always wins, and
the user's own choice ("keep this one instead") overrides the order. The last word is the path,
so the keeper depends on the files alone, never on the order in which they arrived.

What a criterion needs beyond the catalog (the file's format, its metadata) is read from the
file's header as the file is indexed, by the host that has it (or, for a file indexed before,
when a group forms): no pixel is decoded, and a file that cannot be read (gone, not a regular
file) simply has no format and no metadata.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, BinaryIO

from dupwatch import raw, shots
from dupwatch.record import Header

if TYPE_CHECKING:
    # Only for annotations: a decoding worker reads headers here, and the store's package would
    # bring the config and pydantic into every worker's start.
    from dupwatch.store.base import Member

# Formats that keep every pixel as it was: a PNG export of a photo beats its JPEG at equal size.
LOSSLESS = frozenset({"PNG", "TIFF", "BMP", "RAW", "WEBP-LOSSLESS", "QOI", "PPM"})
# Formats cameras and phones write: the original of a photo, rather than a web re-encode.
CAMERA = frozenset({"JPEG", "MPO", "HEIF", "HEIC", "RAW", "TIFF"})

DATE, CAMERA_MODEL, GPS = 1, 2, 4  # the metadata a copy may have kept: `Member.meta`'s bits
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATE_TAGS = (36867, 36868, 306)  # DateTimeOriginal, DateTimeDigitized, DateTime
_MAKE, _MODEL = 271, 272
HEADER_BYTES = 64 << 20  # a header needing more than this to parse is not read
# Own pixels this close are one size: a cut of padding, a canvas or an app's frame is right to a
# pixel or two, so a padded copy's photo may come out a line larger than its original.
PIXELS_TOLERANCE = 0.02


def own_pixels(m: Member) -> int:
    """The photo's own pixels: its padding or canvas left out, when the catalog knows them."""
    return m.pixels or m.width * m.height


# Each criterion as an expression of a member `m`, less is better: the sort key is ascending.
# Pixels: every copy within PIXELS_TOLERANCE of the group's largest is one size (0), the rest
# after it, the larger first (`top` is that size's least).
_LESS = {
    "pixels": "(0 if (p := m.pixels or m.width * m.height) >= top else top - p)",
    "lossless": "m.format not in LOSSLESS",
    "original-format": "m.format not in CAMERA",
    "size": "-m.size",
    "metadata": "-m.meta.bit_count()",
    "oldest": "m.mtime_ns",
    "newest": "-m.mtime_ns",
}
DEFAULT_ORDER = ("pixels", "lossless", "original-format", "size", "metadata", "oldest")
WHY = {
    "reference": "in a reference folder",
    "chosen": "chosen by you",
    "pixels": "more pixels",
    "lossless": "lossless",
    "original-format": "the original's format",
    "size": "larger file",
    "metadata": "richer metadata",
    "oldest": "oldest",
    "newest": "newest",
    "path": "first by name",
}


def ranked(members: Sequence[Member], order: Sequence[str] = DEFAULT_ORDER) -> list[Member]:
    """The members best first."""
    key, top = _key(tuple(order)), _top(members)
    return sorted(members, key=lambda m: key(m, top))


def _top(members: Sequence[Member]) -> float:
    """The fewest own pixels a copy may have and count as the largest of `members`."""
    return max(map(own_pixels, members), default=0) * (1 - PIXELS_TOLERANCE)


@cache
def _key(order: tuple[str, ...]) -> Callable[[Member, float], tuple[object, ...]]:
    """The sort key of an order: a reference file first, then each criterion, then the path
    (the shorter, then the lower). One function per order, made from `_LESS`'s expressions
    (an unknown criterion is a KeyError, so nothing from outside that table is ever compiled),
    rather than a call per criterion per member: `dupwatch groups` sorts every grouped file."""
    body = "".join(f"{_LESS[c]}, " for c in order)
    key: Callable[[Member, float], tuple[object, ...]] = eval(  # noqa: S307 (only _LESS's)
        f"lambda m, top: (not m.reference, {body}len(m.path), m.path)",
        {"LOSSLESS": LOSSLESS, "CAMERA": CAMERA})
    return key


def why(members: Sequence[Member], order: Sequence[str] = DEFAULT_ORDER) -> str:
    """The first criterion on which the keeper (the first of `members`, as `ranked` orders them)
    beat the next best copy, in words."""
    if len(members) < 2:
        return "the only copy"
    key, top = _key(tuple(order)), _top(members)
    # The sort key's first place where the two differ: the same rule that ranked them.
    for name, mine, theirs in zip(("reference", *order, "path", "path"), key(members[0], top),
                                  key(members[1], top), strict=True):
        if mine != theirs:
            return WHY[name]
    return WHY["path"]


UNREAD = Header(None, 0)
# A raw file's header is the camera's own: its date and model are there, unread (LibRaw would be
# imported for them); its RAW+JPEG sibling is told apart by name (`raw.siblings`).
RAW_HEADER = Header("RAW", DATE | CAMERA_MODEL)


def read_header(path: str) -> Header:
    """A file's `Header`; `UNREAD` when it cannot be read as an image (gone, another host's, not
    a regular file, not an image)."""
    if not path.startswith("/"):
        return UNREAD
    if raw.is_raw(path):
        return RAW_HEADER
    try:
        # O_NONBLOCK: a FIFO put where the photo was must not hang the one ingesting thread.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return UNREAD
    with open(fd, "rb", closefd=True) as f:
        try:
            st = os.fstat(f.fileno())
        except OSError:
            return UNREAD
        return header_of(path, f) if stat.S_ISREG(st.st_mode) else UNREAD


def header_of(path: str, data: bytes | BinaryIO) -> Header:
    """`read_header` from the file's bytes, or from the file open (read from its start): for the
    worker that decoded it, which has them already."""
    if raw.is_raw(path):
        return RAW_HEADER
    f = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        f.seek(0)
        return _header(f)
    except Exception:  # any malformed header: the file just has no format
        return UNREAD


def _header(f: object) -> Header:
    from PIL import Image

    with Image.open(f) as im:  # type: ignore[arg-type]
        fmt = im.format
        if fmt == "WEBP":
            fmt = "WEBP-LOSSLESS" if _webp_lossless(im) else "WEBP"
        meta, taken = 0, None
        with contextlib.suppress(Exception):
            exif = im.getexif()
            sub = exif.get_ifd(_EXIF_IFD)
            if any(t in sub or t in exif for t in _DATE_TAGS):
                meta |= DATE
            if exif.get(_MAKE) or exif.get(_MODEL):
                meta |= CAMERA_MODEL
            if exif.get_ifd(_GPS_IFD):
                meta |= GPS
            taken = shots.stamp(exif, sub)
        return Header(fmt, meta, taken)


def _webp_lossless(im: object) -> bool:
    fp = getattr(im, "fp", None)
    if fp is None:
        return False
    fp.seek(12)
    return bool(fp.read(4) == b"VP8L")
