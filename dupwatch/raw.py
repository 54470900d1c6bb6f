"""Camera raw files, decoded from the preview the camera embedded in them when it is big enough.

A raw file holds the sensor's mosaic and, from nearly every camera, a JPEG the camera rendered
from it (often full size): the photo as the photographer saw it, and what its exports and its
RAW+JPEG sibling look like. That preview costs what any JPEG costs to decode (draft mode
included); rendering the mosaic costs far more (benchmarks/raw.py, a 12-megapixel DNG: 15 ms
for the preview, 125 ms for LibRaw's half-size render, 770 ms in full), so the half-size render
is the fallback for a file whose preview is missing or smaller than the methods need. LibRaw,
through rawpy, reads both from every maker's format; rawpy is imported on the first raw file.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from dupwatch.decode import PIXEL_BUDGET, Decoded, decode_image, guard, short, to_rgb, upright, upright_size
from dupwatch.errors import SkipFile

if TYPE_CHECKING:
    import rawpy

# The suffixes of camera raw files: the scan's defaults, and what `decode` sends here.
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf",
                ".rw2", ".raf", ".pef", ".srw", ".x3f", ".3fr", ".erf", ".kdc", ".mrw", ".iiq",
                ".rwl", ".raw")

# A bitmap preview holds at most this many times the file's size (LibRaw unpacks a few
# preview formats, 16-bit ones to 8 bits, so not exactly the file's own bytes).
BITMAP_SLACK = 4

# LibRaw's `sizes.flip` → the EXIF orientation that says the same turn (dcraw's own table).
ORIENTATION_OF_FLIP = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


def is_raw(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in RAW_SUFFIXES


def siblings(a: str, b: str) -> bool:
    """Whether `a` and `b` are one shot a camera wrote twice, as RAW+JPEG: IMG_0001.CR2 and
    IMG_0001.JPG, in one folder, named alike but for the suffix (in any case), one of them raw."""
    (stem_a, _), (stem_b, _) = os.path.splitext(a), os.path.splitext(b)
    return (is_raw(a) != is_raw(b) and os.path.dirname(stem_a) == os.path.dirname(stem_b)
            and os.path.basename(stem_a).casefold() == os.path.basename(stem_b).casefold())


def decode_raw(path: str, data: bytes, min_size: int, grey: bool = False) -> Decoded:
    """`decode` for a raw file: its embedded preview, else its sensor data at half size."""
    try:
        import rawpy
    except ImportError:
        raise SkipFile(path, "camera raw files need rawpy: pip install rawpy") from None
    with guard(path), rawpy.imread(io.BytesIO(data)) as raw:
        sizes = raw.sizes
        orientation = ORIENTATION_OF_FLIP.get(sizes.flip, 1)
        image = _preview(path, raw, min_size, grey, orientation, len(data))
        if image is None:
            # LibRaw turns it as `flip` says; half size skips the demosaicing's interpolation.
            check_mosaic(path, sizes.width, sizes.height)
            pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
            image = Image.fromarray(pixels)
    width, height = upright_size((sizes.width, sizes.height), orientation)
    return Decoded(image, width, height, f"RAW ({os.path.splitext(path)[1][1:].upper()})")


def check_mosaic(path: str, width: int, height: int) -> None:
    """Refuse a half-size render whose buffers would not fit the decode budget.

    LibRaw holds the half-size mosaic (four 16-bit channels a pixel) and numpy the 8-bit RGB result.
    """
    half = (width // 2) * (height // 2)
    if half * 11 > PIXEL_BUDGET:
        raise SkipFile(path, f"raw image too large to render ({width}×{height} pixels)")


def _preview(path: str, raw: rawpy.RawPy, min_size: int, grey: bool, orientation: int,
             file_size: int) -> Image.Image | None:
    """The embedded preview, upright; None when there is none that is big enough to use."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNonFatalError, NotImplementedError):
        # No preview (LibRawNoThumbnailError), or one LibRaw cannot hand over; either way the
        # sensor data can still be read. A fatal error (I/O, memory) goes up: LibRaw's docs
        # say the processor must not be used after one.
        return None
    image: Image.Image | None
    if thumb.format == rawpy.ThumbFormat.JPEG and isinstance(thumb.data, bytes):
        try:
            # The raw's orientation turns a preview that has none of its own (2–8) in its EXIF.
            image = decode_image(path, thumb.data, min_size, grey, orientation).image
        except SkipFile:
            return None  # a broken preview: the sensor data may still be whole
    elif getattr(thumb.data, "nbytes", 0) > BITMAP_SLACK * file_size:
        # An uncompressed preview is stored in the file: one bigger than the file is a header
        # that lies, and LibRaw's array then reaches past its own buffer (reading it can crash).
        return None
    else:
        image = _bitmap(thumb.data, orientation)
    return image if image is not None and min(image.size) >= min_size else None


def _bitmap(pixels: Any, orientation: int) -> Image.Image | None:
    """An uncompressed preview (LibRaw hands over 8-bit RGB or grey), upright."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 3:
        return None
    if pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    elif pixels.shape[2] != 3:
        return None
    return to_rgb(upright(Image.fromarray(pixels), orientation))


def reason(exc: Exception) -> str:
    """The reason a raw file LibRaw refused is skipped (`decode.guard` asks)."""
    import rawpy

    detail = short(exc)
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return "not a raw file LibRaw can read (an unknown camera, or not a raw file at all)"
    if isinstance(exc, rawpy.LibRawIOError | rawpy.LibRawDataError):
        return f"corrupt or truncated raw file ({detail})"
    if isinstance(exc, rawpy.LibRawTooBigError | rawpy.LibRawUnsufficientMemoryError
                  | rawpy.LibRawMemPoolOverflowError):
        return f"raw image too large to decode ({detail})"
    return f"LibRaw cannot decode it: {detail}"
