"""Real DNG files made from real photographs, for the camera-raw tests and benchmarks/raw.py.

There are no camera raw files in the repository (they are 20–60 MB each), so the tests write
DNGs the way a camera or Adobe's converter lays them out, and LibRaw reads them as it reads
theirs:

- IFD0: a small RGB thumbnail (uncompressed, 256 px unless `thumbnail` says) with the DNG tags
  (DNGVersion, the camera model, a colour matrix, the white balance) and the Orientation tag
  (274) that LibRaw turns into `sizes.flip`;
- SubIFD 0: the raw data, a 16-bit RGGB Bayer mosaic (12-bit values over a black level of 64)
  of the photo's linearised pixels, uncompressed;
- SubIFD 1 (unless `preview=False`): a full-size JPEG preview, what the camera rendered.

The IFDs come first and the pixel data after them, as cameras write them, so a file cut short
keeps its structure and loses pixels, as an interrupted copy does. The TIFF is written with
`struct` rather than tifffile: tifffile would need imagecodecs (26 MB) only to store a JPEG that
Pillow already encoded; here every tag LibRaw reads, and where it lies, is in plain sight. The
"sensor" is linear sRGB (ColorMatrix1 is sRGB's XYZ → RGB matrix), so LibRaw's own rendering of
the mosaic comes back close to the photo: within about 12 levels a channel, its brightness and
tone curve LibRaw's.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

BYTE, ASCII, SHORT, LONG, RATIONAL, SRATIONAL = 1, 2, 3, 4, 5, 10
_PACK = {BYTE: "B", SHORT: "H", LONG: "I", RATIONAL: "I", SRATIONAL: "i"}

BLACK, WHITE = 64, 4095
# XYZ (D65) → linear sRGB, as SRATIONALs over 10,000: the test camera's sensor sees sRGB.
SRGB_FROM_XYZ = (32406, -15372, -4986, -9689, 18758, 415, 557, -2040, 10570)


@dataclass(frozen=True)
class Strip:
    """The file offset of pixel data strips[n], in a LONG value."""

    n: int


@dataclass(frozen=True)
class Sub:
    """The file offset of ifds[n], in a LONG value (SubIFDs)."""

    n: int


Entry = tuple[int, int, Sequence[int | Strip | Sub] | str]  # tag, type, values (rationals: num, den, ...)


def dng_bytes(photo: Image.Image, orientation: int = 1, preview: bool = True, quality: int = 90,
              preview_exif: Image.Exif | None = None, thumbnail: int = 256) -> bytes:
    """A DNG of `photo` as a camera held it: `orientation` (EXIF) says how a viewer turns it.

    The preview has no EXIF block unless `preview_exif` gives it one, as many cameras' previews
    have (LibRaw writes one from the raw's own orientation for a preview that has none).
    """
    rgb = photo.convert("RGB")
    w, h = rgb.width - rgb.width % 2, rgb.height - rgb.height % 2  # whole 2×2 Bayer cells
    rgb = rgb.crop((0, 0, w, h))
    thumb = rgb.copy()
    thumb.thumbnail((thumbnail, thumbnail))
    linear = (np.asarray(rgb, dtype=np.float64) / 255.0) ** 2.2 * (WHITE - BLACK) + BLACK
    cfa = np.empty((h, w), "<u2")
    cfa[0::2, 0::2] = linear[0::2, 0::2, 0]  # R G
    cfa[0::2, 1::2] = linear[0::2, 1::2, 1]  # G B
    cfa[1::2, 0::2] = linear[1::2, 0::2, 1]
    cfa[1::2, 1::2] = linear[1::2, 1::2, 2]
    strips = [thumb.tobytes(), cfa.tobytes()]

    ifd0: list[Entry] = [
        (254, LONG, [1]),  # NewSubFileType: a reduced-resolution image
        (256, LONG, [thumb.width]), (257, LONG, [thumb.height]),
        (258, SHORT, [8, 8, 8]), (259, SHORT, [1]), (262, SHORT, [2]),  # 8-bit RGB, uncompressed
        (271, ASCII, "Dupwatch"), (272, ASCII, "Test DNG"),  # Make, Model
        (273, LONG, [Strip(0)]), (274, SHORT, [orientation]),
        (277, SHORT, [3]), (278, LONG, [thumb.height]), (279, LONG, [len(strips[0])]),
        (330, LONG, [Sub(1), Sub(2)] if preview else [Sub(1)]),  # SubIFDs
        (50706, BYTE, [1, 4, 0, 0]), (50707, BYTE, [1, 1, 0, 0]),  # DNGVersion, DNGBackwardVersion
        (50708, ASCII, "Dupwatch Test DNG"),  # UniqueCameraModel
        (50721, SRATIONAL, [n for v in SRGB_FROM_XYZ for n in (v, 10_000)]),  # ColorMatrix1
        (50728, RATIONAL, [1, 1, 1, 1, 1, 1]),  # AsShotNeutral
        (50778, SHORT, [21]),  # CalibrationIlluminant1: D65
    ]
    raw: list[Entry] = [
        (254, LONG, [0]),  # NewSubFileType: the main image
        (256, LONG, [w]), (257, LONG, [h]),
        (258, SHORT, [16]), (259, SHORT, [1]),  # 16 bits, uncompressed
        (262, SHORT, [32803]),  # PhotometricInterpretation: CFA
        (273, LONG, [Strip(1)]), (277, SHORT, [1]), (278, LONG, [h]), (279, LONG, [cfa.nbytes]),
        (33421, SHORT, [2, 2]), (33422, BYTE, [0, 1, 1, 2]),  # CFARepeatPatternDim, CFAPattern RGGB
        (50714, SHORT, [BLACK]), (50717, SHORT, [WHITE]),  # BlackLevel, WhiteLevel
    ]
    ifds = [ifd0, raw]
    if preview:
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=quality, exif=preview_exif or b"")
        jpeg = buf.getvalue()
        if preview_exif is not None and jpeg[2:4] == b"\xff\xe0":
            # A camera's JPEG starts with its EXIF block; Pillow puts JFIF's before it, and LibRaw
            # would then take the preview for one without EXIF and add its own.
            jpeg = jpeg[:2] + jpeg[4 + int.from_bytes(jpeg[4:6], "big"):]
        strips.append(jpeg)
        ifds.append([
            (254, LONG, [1]),
            (256, LONG, [w]), (257, LONG, [h]),
            (258, SHORT, [8, 8, 8]), (259, SHORT, [7]),  # JPEG
            (262, SHORT, [6]),  # YCbCr, as the DNG spec asks of a JPEG preview
            (273, LONG, [Strip(2)]), (277, SHORT, [3]), (278, LONG, [h]), (279, LONG, [len(strips[2])]),
        ])
    # Offsets are 4 bytes whatever they hold: lay out once to learn where everything lands.
    _, ifd_at, strip_at = _layout(ifds, strips, [0] * len(ifds), [0] * len(strips))
    return _layout(ifds, strips, ifd_at, strip_at)[0]


def write_dng(photo: Image.Image, path: Path, orientation: int = 1, preview: bool = True,
              preview_exif: Image.Exif | None = None) -> Path:
    path.write_bytes(dng_bytes(photo, orientation, preview, preview_exif=preview_exif))
    return path


def _layout(ifds: list[list[Entry]], strips: list[bytes], ifd_at: list[int],
            strip_at: list[int]) -> tuple[bytes, list[int], list[int]]:
    """A little-endian TIFF: its IFDs (ifds[0] first), each followed by its long values, then
    the strips; and where each IFD and strip landed."""
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_at[0]))
    ifd_starts, strip_starts = [], []
    for entries in ifds:
        ifd_starts.append(len(out))
        table, values = bytearray(struct.pack("<H", len(entries))), bytearray()
        after = len(out) + 2 + 12 * len(entries) + 4  # where the long values start
        for tag, kind, raw in sorted(entries, key=lambda e: e[0]):
            if isinstance(raw, str):
                data, count = raw.encode("ascii") + b"\0", len(raw) + 1
            else:
                numbers = [ifd_at[v.n] if isinstance(v, Sub) else strip_at[v.n] if isinstance(v, Strip)
                           else v for v in raw]
                data = struct.pack(f"<{len(numbers)}{_PACK[kind]}", *numbers)
                count = len(numbers) // 2 if kind in (RATIONAL, SRATIONAL) else len(numbers)
            if len(data) <= 4:
                field = data.ljust(4, b"\0")
            else:
                field = struct.pack("<I", after + len(values))
                values += data + b"\0" * (len(data) % 2)  # offsets are word-aligned
            table += struct.pack("<HHI", tag, kind, count) + field
        out += table + struct.pack("<I", 0) + values
    for strip in strips:
        strip_starts.append(len(out))
        out += strip + b"\0" * (len(strip) % 2)
    return bytes(out), ifd_starts, strip_starts
