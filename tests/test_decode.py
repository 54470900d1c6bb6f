"""One decode per file: upright, RGB, small when it can be; bad files named with a reason."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dupwatch.decode import decode
from dupwatch.errors import SkipFile
from tests.conftest import SAMPLES, open_rgb


def _bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return open_rgb(SAMPLES / "chelsea.png")


@pytest.mark.parametrize(("orientation", "transpose"), [
    (2, Image.Transpose.FLIP_LEFT_RIGHT), (3, Image.Transpose.ROTATE_180),
    (4, Image.Transpose.FLIP_TOP_BOTTOM), (5, Image.Transpose.TRANSPOSE),
    (6, Image.Transpose.ROTATE_90), (7, Image.Transpose.TRANSVERSE), (8, Image.Transpose.ROTATE_270),
])
def test_exif_orientation_is_applied(chelsea: Image.Image, orientation: int,
                                     transpose: Image.Transpose) -> None:
    # Store the pixels as a camera would (turned), with the tag that turns them back.
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = chelsea.transpose(transpose)  # the inverse of what the tag asks a viewer to do
    data = _bytes(stored, "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode("x.jpg", data, 10_000)
    assert decoded.image.size == chelsea.size
    assert (decoded.width, decoded.height) == chelsea.size
    diff = np.abs(np.asarray(decoded.image, dtype=np.int16) - np.asarray(chelsea, dtype=np.int16))
    assert diff.mean() < 4  # JPEG noise only: a wrong orientation differs by ~50


def test_large_jpeg_is_draft_decoded(chelsea: Image.Image) -> None:
    big = chelsea.resize((4000, 3000))
    decoded = decode("big.jpg", _bytes(big, "JPEG", quality=90), 64)
    assert decoded.image.size == (500, 375)  # libjpeg scaled by 1/8 while decoding
    assert (decoded.width, decoded.height) == (4000, 3000)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "I;16", "1"])
def test_modes_become_rgb(chelsea: Image.Image, mode: str) -> None:
    if mode == "I;16":
        arr = (np.asarray(chelsea.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
        image = Image.fromarray(arr)
    else:
        image = chelsea.convert(mode)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    decoded = decode("x", _bytes(image, fmt), 64)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == chelsea.size
    # Not blank and not saturated: the photo's pattern survived.
    assert np.asarray(decoded.image).std() > 20


def test_sixteen_bit_keeps_its_range(chelsea: Image.Image) -> None:
    gray = np.asarray(chelsea.convert("L"), dtype=np.uint16)
    decoded = decode("x", _bytes(Image.fromarray(gray * 257), "PNG"), 64)
    out = np.asarray(decoded.image.convert("L"), dtype=np.float64)
    assert np.corrcoef(out.ravel(), gray.ravel())[0, 1] > 0.99


def test_transparency_is_flattened_on_white() -> None:
    clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    decoded = decode("x.png", _bytes(clear, "PNG"), 64)
    assert decoded.image.getpixel((5, 5)) == (255, 255, 255)


def test_heic_is_decoded(chelsea: Image.Image) -> None:
    data = _bytes(chelsea, "HEIF", quality=80)
    decoded = decode("phone.heic", data, 64)
    assert decoded.format == "HEIF"
    assert decoded.image.size == chelsea.size


@pytest.mark.parametrize(("make", "reason"), [
    (lambda c: b"", "empty file"),
    (lambda c: b"this is a text file\n" * 20, "a text file, not a photo"),
    (lambda c: _bytes(c, "JPEG")[:2000], "corrupt or truncated"),
    (lambda c: _bytes(c, "PNG")[:5000], "corrupt or truncated"),
    (lambda c: _bytes(Image.new("RGB", (1, 1)), "PNG"), "too small"),
])
def test_bad_files_say_why(chelsea: Image.Image, make: object, reason: str) -> None:
    with pytest.raises(SkipFile, match=reason) as info:
        decode("/photos/bad.jpg", make(chelsea), 64)  # type: ignore[operator]
    assert info.value.path == "/photos/bad.jpg"


def test_enormous_dimensions_are_refused(tmp_path: Path) -> None:
    data = huge_png(30_000, 30_000)
    with pytest.raises(SkipFile, match="too large"):
        decode("huge.png", data, 64)


def huge_png(width: int, height: int) -> bytes:
    """A small PNG file whose header claims `width`×`height`: what a decompression bomb looks like."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def test_grey_decode_of_a_jpeg_skips_colour(chelsea: Image.Image) -> None:
    data = _bytes(chelsea, "JPEG", quality=90)
    grey = decode("x.jpg", data, 64, grey=True).image
    colour = decode("x.jpg", data, 64).image
    assert grey.mode == "L" and colour.mode == "RGB"
    diff = np.abs(np.asarray(grey, dtype=np.int16) - np.asarray(colour.convert("L"), dtype=np.int16))
    assert diff.mean() < 1.5  # the same luminance, by libjpeg instead of Pillow
