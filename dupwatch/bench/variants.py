"""Transformed variants of real photos: the ground truth for accuracy benchmarks and tests.

Each transform is a small function from an RGB image to an encoded file.  Every variant keeps the
name of the photo it came from, so a benchmark can tell a true pair from a false one without any
hand-made list.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

# What each transform writes: (file suffix, encoded bytes).
Encoded = tuple[str, bytes]
Transform = Callable[[Image.Image], Encoded]


def _jpeg(image: Image.Image, quality: int = 90, exif: bytes | None = None) -> Encoded:
    buf = io.BytesIO()
    if exif is None:
        image.save(buf, "JPEG", quality=quality)
    else:
        image.save(buf, "JPEG", quality=quality, exif=exif)
    return ".jpg", buf.getvalue()


def _encode(image: Image.Image, fmt: str, suffix: str, **options: object) -> Encoded:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return suffix, buf.getvalue()


def _resize(scale: float) -> Transform:
    def apply(image: Image.Image) -> Encoded:
        w, h = image.size
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return _jpeg(image.resize(size, Image.Resampling.LANCZOS))

    return apply


def _exif_rotated(orientation: int, transpose: Image.Transpose) -> Transform:
    """Pixels stored rotated, with the EXIF tag that tells a viewer how to show them upright."""

    def apply(image: Image.Image) -> Encoded:
        exif = Image.Exif()
        exif[0x0112] = orientation
        return _jpeg(image.transpose(transpose), exif=exif.tobytes())

    return apply


def _border_crop(fraction: float) -> Transform:
    def apply(image: Image.Image) -> Encoded:
        w, h = image.size
        dx, dy = round(w * fraction), round(h * fraction)
        return _jpeg(image.crop((dx, dy, w - dx, h - dy)))

    return apply


def _centre_crop(keep: float) -> Transform:
    def apply(image: Image.Image) -> Encoded:
        w, h = image.size
        cw, ch = round(w * keep), round(h * keep)
        left, top = (w - cw) // 2, (h - ch) // 2
        return _jpeg(image.crop((left, top, left + cw, top + ch)))

    return apply


def _enhance(kind: type[ImageEnhance._Enhance], factor: float) -> Transform:
    def apply(image: Image.Image) -> Encoded:
        return _jpeg(kind(image).enhance(factor))  # type: ignore[call-arg]

    return apply


def _noise(sigma: float) -> Transform:
    def apply(image: Image.Image) -> Encoded:
        rng = np.random.default_rng(1234)  # fixed: the same variant every run
        arr = np.asarray(image, dtype=np.float32)
        noisy = np.clip(arr + rng.normal(0.0, sigma, arr.shape), 0, 255).astype(np.uint8)
        return _jpeg(Image.fromarray(noisy))

    return apply


def _text_overlay(image: Image.Image) -> Encoded:
    out = image.copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    size = max(12, h // 20)
    draw.text((w // 20, h - 2 * size), "© dupwatch 2026", fill=(255, 255, 255), font_size=size)
    return _jpeg(out)


def _rotate(angle: float) -> Transform:
    def apply(image: Image.Image) -> Encoded:
        return _jpeg(image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True))

    return apply


def _straightened(angle: float) -> Transform:
    """Turned by `angle` and cropped to the largest upright rectangle inside, as an editor's
    straighten tool does (no black corners)."""

    def apply(image: Image.Image) -> Encoded:
        w, h = image.size
        turned = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        cw, ch = _inner_rectangle(w, h, math.radians(angle))
        left, top = (turned.width - cw) / 2, (turned.height - ch) / 2
        return _jpeg(turned.crop((round(left), round(top), round(left + cw), round(top + ch))))

    return apply


def _inner_rectangle(w: int, h: int, angle: float) -> tuple[float, float]:
    """The largest axis-aligned rectangle inside a w×h rectangle turned by `angle` radians."""
    sin, cos = abs(math.sin(angle)), abs(math.cos(angle))
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2 * sin * cos * long_side or abs(sin - cos) < 1e-10:
        x = 0.5 * short_side
        wr, hr = (x / sin, x / cos) if w >= h else (x / cos, x / sin)
    else:
        cos2 = cos * cos - sin * sin
        wr, hr = (w * cos - h * sin) / cos2, (h * cos - w * sin) / cos2
    return wr, hr


def _perspective(image: Image.Image) -> Encoded:
    w, h = image.size
    d = 0.08
    # Map the output quad back to a source quad: a mild 3-D tilt of the top edge.
    src = [(w * d, 0.0), (w * (1 - d), 0.0), (float(w), float(h)), (0.0, float(h))]
    dst = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    coeffs = _perspective_coeffs(dst, src)
    return _jpeg(image.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC))


def _perspective_coeffs(
    out_pts: list[tuple[float, float]], in_pts: list[tuple[float, float]]
) -> tuple[float, ...]:
    rows = []
    for (x, y), (u, v) in zip(out_pts, in_pts, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    rhs = np.array([c for pt in in_pts for c in pt], dtype=np.float64)
    return tuple(np.linalg.solve(np.array(rows, dtype=np.float64), rhs).tolist())


# The variants the core must find (recall 1.0 or ≥ 0.95), by name.
CORE_TRANSFORMS: dict[str, Transform] = {
    "copy": lambda image: _jpeg(image, quality=95),  # placeholder replaced by a byte copy below
    "jpeg-q50": lambda image: _jpeg(image, quality=50),
    "png": lambda image: _encode(image, "PNG", ".png"),
    "webp": lambda image: _encode(image, "WEBP", ".webp", quality=80),
    "resize-25": _resize(0.25),
    "resize-50": _resize(0.5),
    "resize-150": _resize(1.5),
    "exif-rot90": _exif_rotated(6, Image.Transpose.ROTATE_90),
    "exif-rot180": _exif_rotated(3, Image.Transpose.ROTATE_180),
    "exif-mirror": _exif_rotated(2, Image.Transpose.FLIP_LEFT_RIGHT),
    "crop-5": _border_crop(0.05),
    "bright+25": _enhance(ImageEnhance.Brightness, 1.25),
    "bright-25": _enhance(ImageEnhance.Brightness, 0.75),
    "contrast+25": _enhance(ImageEnhance.Contrast, 1.25),
    "contrast-25": _enhance(ImageEnhance.Contrast, 0.75),
    "grayscale": lambda image: _jpeg(ImageOps.grayscale(image)),
    "blur": lambda image: _jpeg(image.filter(ImageFilter.GaussianBlur(2))),
    "noise": _noise(8.0),
    "text": _text_overlay,
}

# Harder edits that the hash-and-pixel default is not expected to find (robust mode's job).
HARD_TRANSFORMS: dict[str, Transform] = {
    "rot90": lambda image: _jpeg(image.transpose(Image.Transpose.ROTATE_90)),
    "rot180": lambda image: _jpeg(image.transpose(Image.Transpose.ROTATE_180)),
    "mirror": lambda image: _jpeg(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "rot10": _rotate(10),
    "rot25": _rotate(25),
    "straighten10": _straightened(10),
    "straighten25": _straightened(25),
    "crop-60": _centre_crop(0.6),
    "perspective": _perspective,
}

# The article's robustness experiment (`dupwatch bench`): rotation by small angles and by 90°,
# scaling, perspective, crop, flip, brightness, recompression and text, after an exact copy.
BENCH_TRANSFORMS: dict[str, Transform] = {
    "copy": CORE_TRANSFORMS["copy"],
    "jpeg-q50": CORE_TRANSFORMS["jpeg-q50"],
    "resize-50": CORE_TRANSFORMS["resize-50"],
    "resize-150": CORE_TRANSFORMS["resize-150"],
    "rot5": _rotate(5),
    "rot10": HARD_TRANSFORMS["rot10"],
    "rot90": HARD_TRANSFORMS["rot90"],
    "perspective": HARD_TRANSFORMS["perspective"],
    "crop-5": CORE_TRANSFORMS["crop-5"],
    "crop-60": HARD_TRANSFORMS["crop-60"],
    "mirror": HARD_TRANSFORMS["mirror"],
    "flip": lambda image: _jpeg(image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    "bright+25": CORE_TRANSFORMS["bright+25"],
    "bright-25": CORE_TRANSFORMS["bright-25"],
    "text": CORE_TRANSFORMS["text"],
}

# Every transform by name, for benchmarks that take a list.
TRANSFORMS: dict[str, Transform] = {**CORE_TRANSFORMS, **HARD_TRANSFORMS, **BENCH_TRANSFORMS}

# Which of the core variants must be found every time (the rest: ≥ 95 %).
RECALL_ONE = {"copy", "jpeg-q50", "png", "webp", "resize-25", "resize-50", "resize-150",
              "exif-rot90", "exif-rot180", "exif-mirror"}


@dataclass(frozen=True)
class Variant:
    path: Path
    source: str  # stem of the original photo
    transform: str


def photo_paths(folder: Path) -> list[Path]:
    """The photos under a folder, in a stable order."""
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def write_variants(
    originals: Iterable[Path],
    out: Path,
    transforms: dict[str, Transform] | None = None,
) -> Iterator[Variant]:
    """Write each transform of each original under `out/<transform>/`, yielding what was written."""
    transforms = CORE_TRANSFORMS if transforms is None else transforms
    for original in originals:
        with Image.open(original) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        for name, transform in transforms.items():
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            if name == "copy":
                target = folder / original.name
                target.write_bytes(original.read_bytes())
            else:
                suffix, data = transform(image)
                target = folder / f"{original.stem}{suffix}"
                target.write_bytes(data)
            yield Variant(target, original.stem, name)


def write_large_jpeg(original: Path, target: Path, size: tuple[int, int] = (4000, 3000)) -> None:
    """A 12-megapixel camera-like JPEG made from a real photo, for throughput benchmarks."""
    with Image.open(original) as im:
        big = im.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    big.save(target, "JPEG", quality=92)
