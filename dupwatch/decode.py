"""One decode per file: upright, RGB, no bigger than the methods need, and only photo formats.

JPEGs are decoded in draft mode: libjpeg scales by 1/2, 1/4 or 1/8 while decoding, so a
12-megapixel photo costs a fraction of a full decode when the methods need 64 pixels. Other
formats are decoded whole, so their size is checked against a budget from the header before a
pixel is decoded, and a large image is shrunk right after decoding, before any mode conversion
copies it. Only the formats dupwatch reads are tried: Pillow would otherwise pick a decoder by
content, and its PostScript plugin runs Ghostscript on whatever a file named `.jpg` holds.
Every failure a decoder raises for a bad file becomes a `SkipFile` in one place, `guard`.
Camera raw files are `raw.py`'s: their embedded JPEG preview comes back here.
"""

from __future__ import annotations

import importlib
import io
import struct
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from typing import IO

import numpy as np
import pillow_heif
from PIL import Image, UnidentifiedImageError

from dupwatch.errors import SkipFile, one_line

pillow_heif.register_heif_opener()

# Smaller than this on either side, an image has no pattern worth comparing.
MIN_SIDE = 8
# The photo formats dupwatch reads (README), by Pillow's names; MPO is a phone's JPEG with a
# second picture in it, AVIF and HEIF come from pillow-heif or Pillow's own AVIF plugin.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "GIF", "BMP", "HEIF", "AVIF")
# The most memory one decoded image may take (Pillow's own layout: 4 bytes for an RGB pixel),
# so that a worker stays small whatever a header claims.
PIXEL_BUDGET = 200 * 2**20
# Above this many pixels a decoded image is shrunk at once (by whole factors, keeping the size
# the methods need); below it images are left as they are, as they always were.
SHRINK_ABOVE = 16_000_000
# A library's message in a reason is cut here: the reason is one line for the user.
REASON_CHARS = 100

Source = bytes | IO[bytes]


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # RGB (or L when asked for grey), upright, short side ≥ the size asked for
    width: int  # the photo's full upright size, not the decoded one
    height: int
    format: str


def decode(path: str, data: Source, min_size: int, grey: bool = False) -> Decoded:
    """Decode `data` (the bytes of `path`, or the file open at its start) to an upright RGB image
    of at least `min_size`.

    With `grey`, a JPEG is decoded straight to luminance (libjpeg then skips the chroma
    upsampling and colour conversion, about 10 % of the decode) when no method needs colour.
    Camera raw files (by their suffix) go to `raw.py`.
    """
    if isinstance(data, bytes) and not data:
        raise SkipFile(path, "empty file", lasting=True)
    from dupwatch import raw  # here, not at the top: raw.py builds on this module

    if raw.is_raw(path):
        return raw.decode_raw(path, data if isinstance(data, bytes) else data.read(), min_size, grey)
    return decode_image(path, data, min_size, grey)


def decode_image(path: str, data: Source, min_size: int, grey: bool = False, orientation: int = 1) -> Decoded:
    """What Pillow reads: a photo file, or the JPEG a raw file embeds.

    `orientation` (EXIF's 1–8) turns an image that has no orientation of its own: a raw file's
    preview, which the raw's own orientation describes.
    """
    fp = io.BytesIO(data) if isinstance(data, bytes) else data
    with guard(path), warnings.catch_warnings():
        # dupwatch's own budget below (decoded bytes, after draft) is the limit that matters
        # between Pillow's warning and its error: a 100-megapixel JPEG decodes at 1/8.
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        try:
            im = Image.open(fp, formats=_formats())
        except UnidentifiedImageError:
            fp.seek(0)
            raise SkipFile(path, what_it_is(fp.read(512)), lasting=True) from None
        with im:
            fmt, full = im.format or "unknown", im.size
            if min(full) < MIN_SIDE:
                raise SkipFile(path, f"image too small to compare ({full[0]}×{full[1]} pixels)", lasting=True)
            if fmt in ("JPEG", "MPO"):
                im.draft("L" if grey else "RGB", (min_size, min_size))
            check_budget(path, im)
            im.load()
            own = im.getexif().get(0x0112, 1)
            if own in TRANSPOSE:  # 1 is no turn of its own: a raw preview may say 1 and mean none
                orientation = own
            width, height = upright_size(full, orientation)
            turned = upright(shrink(im, min_size), orientation)
            image = turned if grey and turned.mode == "L" else to_rgb(turned)
    return Decoded(image, width, height, fmt)


@cache
def _formats() -> list[str]:
    # Only these plugins, not Image.init()'s every one: the rest are never tried, and importing
    # them all costs each worker's first file noticeably.
    for plugin in ("Bmp", "Gif", "Jpeg", "Mpo", "Png", "Tiff", "WebP", "Avif"):
        with suppress(ImportError):
            importlib.import_module(f"PIL.{plugin}ImagePlugin")
    return [f for f in PHOTO_FORMATS if f in Image.OPEN]


# Errors a decoder library raises for bad content (Pillow's plugins raise all of these for
# truncated or malformed data; pillow-heif raises RuntimeError; struct.error for short headers).
CONTENT_ERRORS = (ValueError, OSError, RuntimeError, SyntaxError, EOFError, struct.error,
                  LookupError, TypeError, ArithmeticError, AttributeError)


@contextmanager
def guard(path: str) -> Iterator[None]:
    """The one place where whatever a decoder raises for a bad file becomes a `SkipFile`."""
    try:
        yield
    except SkipFile:
        raise
    except Image.DecompressionBombError as exc:
        raise SkipFile(path, f"image too large: {short(exc)}") from None
    except MemoryError:
        raise SkipFile(path, "image too large to decode in memory") from None
    except CONTENT_ERRORS as exc:
        raise SkipFile(path, f"corrupt or truncated image: {short(exc)}", lasting=True) from None
    except Exception as exc:
        rawpy = sys.modules.get("rawpy")
        if rawpy is not None and isinstance(exc, rawpy.LibRawError):
            from dupwatch.raw import reason

            raise SkipFile(path, reason(exc), lasting=True) from None
        raise


def short(exc: BaseException) -> str:
    """A library's message, on one line and cut to a length a user reads."""
    detail = exc.args[0] if exc.args else ""
    text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail or exc)
    return one_line(text, REASON_CHARS) or type(exc).__name__


# What a file is when it is not a photo: the start of a few well-known formats.
SIGNATURES = (
    (b"%!PS", "a PostScript document"), (b"\xc5\xd0\xd3\xc6", "a PostScript document"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
    (b"8BPS", "a Photoshop document"), (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"), (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x7fELF", "a program"), (b"ID3", "an MP3 file"), (b"OggS", "an Ogg file"),
)

# ISO media files that say they hold a still image (HEIF, HEIC, AVIF) rather than a video.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif",
               b"avis", b"mif2", b"MiHE", b"MiHB", b"MiAn"}

# The photo formats' own starts: such a file that no decoder accepts is a broken photo.
PHOTO_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"GIF87a", b"GIF89a")


def what_it_is(head: bytes) -> str:
    """The reason a file that no photo decoder accepts is skipped, naming what it really is."""
    if not head:
        return "empty file"
    if head.startswith(PHOTO_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "corrupt or truncated image (its header cannot be read)"
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return f"{kind}, not a photo"
    if head[4:8] == b"ftyp":
        end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[i:i + 4] for i in range(8, end - 3, 4)}
        if brands & HEIF_BRANDS:
            return "corrupt or truncated HEIF/AVIF image"
        return "a video, not a photo"
    if head[:4] in (b"RIFF",) and head[8:12] in (b"AVI ", b"WAVE"):
        return "a video or sound file, not a photo"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page, not a photo"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing, not a photo"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = ""
    if decoded and all(c.isprintable() or c in "\t\r\n" for c in decoded):
        return "a text file, not a photo"
    return "not a photo format dupwatch reads"


# Bytes Pillow keeps per pixel of a mode: one for 1, L and P; two for 16-bit grey; else four.
_NARROW = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}


def decoded_bytes(size: tuple[int, int], mode: str) -> int:
    return size[0] * size[1] * _NARROW.get(mode, 4)


def check_budget(path: str, im: Image.Image) -> None:
    """Refuse, from the header alone, an image whose decoded pixels would not fit the budget."""
    need = decoded_bytes(im.size, im.mode)
    if need > PIXEL_BUDGET:
        raise SkipFile(path, f"image too large to decode ({im.size[0]}×{im.size[1]} pixels,"
                             f" {need / 2**20:.0f} MB decoded; at most {PIXEL_BUDGET // 2**20} MB)")


# Modes whose pixels cannot be averaged as they are (palette indices, bits, 16-bit grey that
# Pillow's reduce does not take): what each is widened to, a strip at a time, to be reduced.
_WIDEN = {"P": "RGB", "PA": "RGBA", "1": "L", "I;16": "I", "I;16L": "I", "I;16B": "I", "I;16N": "I"}
# Pixels per strip when a mode has to be widened before it is reduced.
_STRIP_PIXELS = 2_000_000


def shrink(im: Image.Image, min_size: int) -> Image.Image:
    """A large decoded image reduced by a whole factor that keeps its short side ≥ `min_size`.

    Done before any conversion: to_rgb and upright each make a copy, at the reduced size.
    """
    factor = min(im.size) // max(min_size, 1)
    if im.width * im.height <= SHRINK_ABOVE or factor < 2:
        return im
    if im.mode not in _WIDEN:
        return im.reduce(factor)
    mode = "RGBA" if im.mode == "P" and "transparency" in im.info else _WIDEN[im.mode]
    out = Image.new(mode, (-(-im.width // factor), -(-im.height // factor)))
    rows = max(1, _STRIP_PIXELS // (im.width * factor)) * factor
    for top in range(0, im.height, rows):
        strip = im.crop((0, top, im.width, min(top + rows, im.height))).convert(mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


# EXIF orientation → the turn that shows the image upright (1, upright already, is not here).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


def upright(im: Image.Image, orientation: int) -> Image.Image:
    """`im` turned as its EXIF `orientation` says; always a new image (`im` may be closed next)."""
    turn = TRANSPOSE.get(orientation)
    return im.transpose(turn) if turn is not None else im.copy()


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    w, h = size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is flattened onto white, as exports do."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # Wide greyscale: stretch its real range to 8 bits (a plain convert would clip to white).
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")
