"""One decode per file: upright, RGB, no bigger than the methods need.

JPEGs are decoded in draft mode: libjpeg scales by 1/2, 1/4 or 1/8 while decoding, so a
12-megapixel photo costs a fraction of a full decode when the methods need 64 pixels. Every
failure Pillow can raise for a bad file becomes a `SkipFile` naming the file and the reason.
Camera raw files are `raw.py`'s: their embedded JPEG preview comes back here.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image, UnidentifiedImageError

from dupwatch.errors import SkipFile

pillow_heif.register_heif_opener()

# Smaller than this on either side, an image has no pattern worth comparing.
MIN_SIDE = 8


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # RGB (or L when asked for grey), upright, short side ≥ the size asked for
    width: int  # the photo's full upright size, not the decoded one
    height: int
    format: str


def decode(path: str, data: bytes, min_size: int, grey: bool = False) -> Decoded:
    """Decode `data` (the bytes of `path`) to an upright RGB image of at least `min_size`.

    With `grey`, a JPEG is decoded straight to luminance (libjpeg then skips the chroma
    upsampling and colour conversion, about 10 % of the decode) when no method needs colour.
    Camera raw files (by their suffix) go to `raw.py`.
    """
    if not data:
        raise SkipFile(path, "empty file")
    from dupwatch import raw  # here, not at the top: raw.py builds on this module

    if raw.is_raw(path):
        return raw.decode_raw(path, data, min_size, grey)
    return decode_image(path, data, min_size, grey)


def decode_image(path: str, data: bytes, min_size: int, grey: bool = False, orientation: int = 1) -> Decoded:
    """What Pillow reads: a photo file, or the JPEG a raw file embeds.

    `orientation` (EXIF's 1–8) turns an image that has no orientation of its own: a raw file's
    preview, which the raw's own orientation describes.
    """
    try:
        with warnings.catch_warnings():
            # Past Pillow's pixel limit it raises; between 1× and 2× the limit it only warns.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, full = im.format or "unknown", im.size
                if min(full) < MIN_SIDE:
                    raise SkipFile(path, f"image too small to compare ({full[0]}×{full[1]} pixels)")
                if fmt == "JPEG":
                    im.draft("L" if grey else "RGB", (min_size, min_size))
                im.load()
                own = im.getexif().get(0x0112, 1)
                if own in TRANSPOSE:  # 1 is no turn of its own: a raw preview may say 1 and mean none
                    orientation = own
                width, height = upright_size(full, orientation)
                turned = upright(im, orientation)
                image = turned if grey and turned.mode == "L" else to_rgb(turned)
    except SkipFile:
        raise
    except UnidentifiedImageError:
        raise SkipFile(path, "not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise SkipFile(path, f"image too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError) as exc:
        # Pillow's plugins raise all of these for truncated or malformed data.
        raise SkipFile(path, f"corrupt or truncated image: {exc}") from None
    except MemoryError:
        raise SkipFile(path, "image too large to decode in memory") from None
    return Decoded(image, width, height, fmt)


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
