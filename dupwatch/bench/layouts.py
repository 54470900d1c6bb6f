"""Generated originals that share one layout, or sit near black or white: where a fingerprint
of grey levels is blind (issue 15).

Different products cut out on the same white background, different photos inside the same
phone-screenshot frame and different pages of one text document agree on most of their pixels
yet are not duplicates (hard negatives); their re-encoded, resized, cropped... copies are
(hard positives). Night photos and star fields are near-black, high-key photos near-white: a
comparison that leaves out what is near-black or near-white in both images has little left of
them. Tiny and flat images carry no fingerprint at all and must pair with nothing.

Everything is drawn from fixed seeds, Pillow's built-in font and the real photos given (in
sorted order), so two runs write the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from dupwatch.bench.variants import Variant
from dupwatch.config import CacheConfig
from dupwatch.record import Match
from dupwatch.store import open_store

PER_FAMILY = 12
STAR_FIELDS = 6
FAMILIES = ("product", "screenshot", "document", "night", "bright", "tiny")

PRODUCT_CANVAS = 800
PRODUCT_SIDE = 360  # 45 % of the canvas
PRODUCT_BACKGROUND = 255
SCREEN = (720, 1560)
SCREEN_PHOTO = (648, 432)  # 90 % of the width, 3:2
PAGE = (850, 1100)
STARS = (1000, 700)
NIGHT_LEVEL, BRIGHT_LEVEL = 20, 235  # most pixels of a night photo below, of a bright one above

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont | ImageFont.TransposedFont
_SYLLABLES = ("ka", "lo", "min", "ter", "ra", "vo", "sel", "an", "di", "po", "ne", "tu", "sar", "el",
              "mo", "ri", "qua", "den", "is", "ul", "fa", "gor", "be", "ten", "ox", "li", "pra", "um")


@dataclass(frozen=True)
class Layout:
    path: Path
    family: str
    variants: bool  # its transformed copies belong in the benchmark too
    source: str = ""  # stem of the real photo it was made from, if any


def write_layouts(photos: list[Path], out: Path) -> list[Layout]:
    """Write every family's originals as lossless PNG under `out/<family>/`."""
    pool = sorted(photos)
    needed = 4 * PER_FAMILY
    if len(pool) < needed:
        raise ValueError(f"layouts need {needed} photos, got {len(pool)}")
    chunks = [pool[k * PER_FAMILY:(k + 1) * PER_FAMILY] for k in range(4)]
    made: list[Layout] = []
    made += _from_photos(out, "product", chunks[0], _product)
    made += _from_photos(out, "screenshot", chunks[1], _screenshot)
    made += _each(out, "document", {f"document_{n + 1:02d}": _document(n) for n in range(PER_FAMILY)})
    made += _from_photos(out, "night", chunks[2], _night)
    made += _each(out, "night", {f"night_stars_{n + 1:02d}": _stars(n) for n in range(STAR_FIELDS)})
    made += _from_photos(out, "bright", chunks[3], _bright)
    made += _each(out, "tiny", _tiny(), variants=False)
    return made


def _save(out: Path, family: str, name: str, image: Image.Image) -> Path:
    folder = out / family
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    image.save(path, "PNG", optimize=False)
    return path


def _each(out: Path, family: str, images: Mapping[str, Image.Image], variants: bool = True) -> list[Layout]:
    return [Layout(_save(out, family, name, image), family, variants) for name, image in images.items()]


def _from_photos(out: Path, family: str, photos: Sequence[Path],
                 make: Callable[[Image.Image, int], Image.Image]) -> list[Layout]:
    made = []
    for n, photo in enumerate(photos):
        with Image.open(photo) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        path = _save(out, family, f"{family}_{n + 1:02d}", make(image, n))
        made.append(Layout(path, family, True, photo.stem))
    return made


def _font(size: int) -> _Font:
    return ImageFont.load_default(size)


def _words(rng: np.random.Generator, count: int) -> list[str]:
    return ["".join(str(s) for s in rng.choice(_SYLLABLES, size=int(rng.integers(1, 4))))
            for _ in range(count)]


def _wrap(draw: ImageDraw.ImageDraw, words: Iterable[str], font: _Font, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in words:
        trial = f"{line} {word}" if line else word
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line] if line else lines


# --- product: a cut-out on one white background ------------------------------------------------

def _product(photo: Image.Image, n: int) -> Image.Image:
    side = PRODUCT_CANVAS
    canvas = Image.new("RGB", (side, side), (PRODUCT_BACKGROUND,) * 3)
    item = ImageOps.fit(photo, (PRODUCT_SIDE, PRODUCT_SIDE), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    left = top = (side - PRODUCT_SIDE) // 2
    box = (left, top, left + PRODUCT_SIDE, top + PRODUCT_SIDE)
    # A soft grey shadow under the product, as a studio floor shows it.
    shadow = Image.new("L", (side, side), 0)
    ImageDraw.Draw(shadow).ellipse((left + 30, top + PRODUCT_SIDE - 10, left + PRODUCT_SIDE - 30,
                                    top + PRODUCT_SIDE + 40), fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(14))
    canvas.paste(Image.new("RGB", (side, side), (120, 120, 120)), (0, 0), shadow)
    mask = Image.new("L", (PRODUCT_SIDE, PRODUCT_SIDE), 0)
    shape = ImageDraw.Draw(mask)
    if n < PER_FAMILY // 2:
        shape.rounded_rectangle((0, 0, PRODUCT_SIDE - 1, PRODUCT_SIDE - 1), radius=48, fill=255)
    else:
        shape.ellipse((0, 0, PRODUCT_SIDE - 1, PRODUCT_SIDE - 1), fill=255)
    canvas.paste(item, box[:2], mask)
    return canvas


# --- screenshot: one app's frame around a different photo -------------------------------------

def _screenshot(photo: Image.Image, n: int) -> Image.Image:
    w, h = SCREEN
    screen = Image.new("RGB", SCREEN, (255, 255, 255))
    draw = ImageDraw.Draw(screen)
    # Status bar: time, signal bars, battery.
    draw.rectangle((0, 0, w, 56), fill=(240, 240, 242))
    draw.text((32, 12), "9:41", fill=(20, 20, 20), font=_font(30))
    for k in range(4):
        draw.rectangle((560 + 14 * k, 40 - 7 * k, 569 + 14 * k, 44), fill=(20, 20, 20))
    draw.rectangle((626, 16, 682, 42), outline=(20, 20, 20), width=3)
    draw.rectangle((632, 22, 666, 36), fill=(20, 20, 20))
    draw.rectangle((683, 24, 688, 34), fill=(20, 20, 20))
    # App header.
    draw.rectangle((0, 56, w, 176), fill=(38, 110, 190))
    draw.text((40, 92), "Wanderlog", fill=(255, 255, 255), font=_font(44))
    draw.ellipse((630, 90, 680, 140), outline=(255, 255, 255), width=4)
    # The post: author row, photo, caption.
    draw.ellipse((36, 206, 96, 266), fill=(200, 205, 215))
    draw.text((112, 220), "travel.notes", fill=(30, 30, 30), font=_font(28))
    left, top = (w - SCREEN_PHOTO[0]) // 2, 290
    screen.paste(ImageOps.fit(photo, SCREEN_PHOTO, Image.Resampling.LANCZOS), (left, top))
    rng = np.random.default_rng(1000 + n)
    font = _font(28)
    lines = _wrap(draw, _words(rng, 22 + int(rng.integers(0, 8))), font, SCREEN_PHOTO[0])[:3]
    for k, line in enumerate(lines):
        draw.text((left, top + SCREEN_PHOTO[1] + 30 + 40 * k), line, fill=(40, 40, 40), font=font)
    # Bottom navigation: home, search, add, profile.
    nav = h - 140
    draw.rectangle((0, nav, w, h), fill=(248, 248, 250))
    draw.line((0, nav, w, nav), fill=(210, 210, 215), width=2)
    ink = (60, 60, 70)
    for k in range(4):
        cx, cy = 90 + 180 * k, nav + 60
        if k == 0:
            draw.polygon([(cx - 30, cy), (cx, cy - 28), (cx + 30, cy)], outline=ink, width=4)
            draw.rectangle((cx - 20, cy, cx + 20, cy + 26), outline=ink, width=4)
        elif k == 1:
            draw.ellipse((cx - 24, cy - 24, cx + 12, cy + 12), outline=ink, width=4)
            draw.line((cx + 8, cy + 8, cx + 26, cy + 26), fill=ink, width=5)
        elif k == 2:
            draw.rounded_rectangle((cx - 26, cy - 26, cx + 26, cy + 26), radius=10, outline=ink, width=4)
            draw.line((cx, cy - 14, cx, cy + 14), fill=ink, width=4)
            draw.line((cx - 14, cy, cx + 14, cy), fill=ink, width=4)
        else:
            draw.ellipse((cx - 12, cy - 28, cx + 12, cy - 4), outline=ink, width=4)
            draw.arc((cx - 28, cy, cx + 28, cy + 50), 180, 360, fill=ink, width=4)
    return screen


# --- document: pages of one report --------------------------------------------------------------

def _document(n: int) -> Image.Image:
    w, h = PAGE
    margin = 90
    page = Image.new("RGB", PAGE, (255, 255, 255))
    draw = ImageDraw.Draw(page)
    rng = np.random.default_rng(2000 + n)
    heading = " ".join(_words(rng, 4)).capitalize()
    draw.text((margin, margin), heading, fill=(0, 0, 0), font=_font(32))
    font, leading = _font(18), 27
    y = margin + 70
    while y < h - margin - 3 * leading:
        words = _words(rng, int(rng.integers(40, 90)))
        for line in _wrap(draw, words, font, w - 2 * margin):
            if y > h - margin - leading:
                break
            draw.text((margin, y), line, fill=(0, 0, 0), font=font)
            y += leading
        y += leading  # a blank line between paragraphs
    draw.text((w // 2 - 10, h - margin + 30), str(n + 1), fill=(0, 0, 0), font=font)
    return page


# --- night: darkened photos and star fields -------------------------------------------------------

def _luma(rgb: np.ndarray) -> np.ndarray:
    out: np.ndarray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float64)
    return out


def _night(photo: Image.Image, n: int) -> Image.Image:
    """A strong gamma pushes most of the photo into black while its brightest spots stay bright
    (lamps, a stage): the gamma is chosen per photo so that its 80th percentile lands below the
    night level while its brightest half percent stays near white; a gain then makes sure of it."""
    rgb = np.asarray(photo, dtype=np.float64) / 255.0
    luma = _luma(rgb)
    top, mid = float(np.percentile(luma, 99.5)), float(np.percentile(luma, 80))
    gamma = 60.0 if mid >= top else min(60.0, max(2.2, np.log(16 / 230) / np.log(max(mid, 1e-6) / top)))
    lit = np.clip(rgb / max(top, 1e-6), 0.0, 1.0) ** gamma * 0.9
    dark = lit * np.array([0.85, 0.9, 1.0])  # a little blue, as night looks
    gain = min(1.0, (NIGHT_LEVEL - 4) / 255.0 / max(float(np.percentile(_luma(dark), 80)), 1e-6))
    return Image.fromarray(np.clip(np.round(dark * gain * 255.0), 0, 255).astype(np.uint8))


def _stars(n: int) -> Image.Image:
    w, h = STARS
    rng = np.random.default_rng(3000 + n)
    sky = np.zeros((h, w, 3), dtype=np.float64)
    if n % 2 == 1:  # a faint glow over the horizon: a town far away
        rise = np.clip((np.arange(h) - h * 0.6) / (h * 0.4), 0.0, 1.0) ** 2
        sky += rise[:, None, None] * np.array([38.0, 24.0, 30.0])
    field = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(field)
    for _ in range(int(rng.integers(300, 700))):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        level = int(60 + 195 * float(rng.power(0.3)) ** 2)
        tint = rng.uniform(0.85, 1.0, 3)
        colour = tuple(int(level * t) for t in tint)
        r = float(rng.choice([0.0, 0.0, 0.0, 0.8, 1.2, 2.0]))
        if r == 0.0:
            draw.point((x, y), fill=colour)
        else:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return field.filter(ImageFilter.GaussianBlur(0.6))


# --- bright: high-key photos ------------------------------------------------------------------------

def _bright(photo: Image.Image, n: int) -> Image.Image:
    """Every pixel pulled towards white, as an overexposed shot: 80 % end above the bright level
    and keep the photo's detail as faint differences of a few grey levels; the darkest spots
    stay light grey, so a brighter copy still holds something besides pure white."""
    depth = 255.0 - np.asarray(photo, dtype=np.float64)
    darkness = _luma(depth)
    deep, mid = float(np.percentile(darkness, 99.5)), float(np.percentile(darkness, 80))
    gamma = 60.0 if mid >= deep else min(60.0, max(1.0, np.log(0.2) / np.log(max(mid, 1e-6) / deep)))
    faint = 80.0 * np.clip(depth / max(deep, 1e-6), 0.0, 1.0) ** gamma
    k = min(1.0, (255 - BRIGHT_LEVEL - 4) / max(float(np.percentile(_luma(faint), 80)), 1e-6))
    return Image.fromarray(np.clip(np.round(255.0 - faint * k), 0, 255).astype(np.uint8))


# --- tiny: too small or too flat to carry a fingerprint -----------------------------------------------

def _tiny() -> dict[str, Image.Image]:
    disc = Image.new("RGB", (32, 32), (0, 0, 0))
    ImageDraw.Draw(disc).ellipse((6, 6, 25, 25), fill=(150, 150, 150))
    ramp = np.tile(np.linspace(40, 220, 16), (16, 1)).astype(np.uint8)
    return {
        "tiny_flat_8x12": Image.new("RGB", (8, 12), (128, 128, 128)),
        "tiny_disc_32": disc,
        "tiny_gradient_16": Image.fromarray(ramp).convert("RGB"),
        "tiny_pixel_1": Image.new("RGB", (1, 1), (120, 160, 200)),
        "tiny_flat_64": Image.new("RGB", (64, 64), (200, 120, 60)),
    }


# --- the benchmark's report ---------------------------------------------------------------------------

def describe(m: Match) -> str:
    return (f"{Path(m.path).name} ~ {Path(m.match).name} {m.method} {m.score:.3f}"
            f" {m.transform or ''} {m.geometry or ''}").rstrip()


def recorded(library: Path) -> list[Match]:
    """Every pair a library (a cache file) holds."""
    store = open_store(CacheConfig(path=library))
    try:
        return list(store.pairs())
    finally:
        store.close()


def report(made: Sequence[Layout], variants: Sequence[Variant], among_originals: Sequence[Match],
           libraries: Mapping[str, Path]) -> str:
    """False pairs among the originals by name, the recall of the layouts' copies per transform
    (`libraries`: each transform's library, its copies scanned into the originals) and per family."""
    family = {lay.path.stem: lay.family for lay in made}
    source = {lay.path.stem: lay.source for lay in made}

    def named(path: str) -> str:
        stem = Path(path).stem
        if stem not in family:
            return Path(path).name
        of = f", from {source[stem]}" if source[stem] else ""
        return f"{Path(path).name} ({family[stem]}{of})"

    out = [f"false pairs among the originals: {len(among_originals)}"]
    out += [f"- {named(m.path)} ~ {named(m.match)} {m.method} {m.score:.3f}" for m in among_originals]
    ours = [v for v in variants if v.source in family]
    rows = ["| transform | layout copies | found | false pairs | layouts recall |", "|---|---|---|---|---|"]
    by_family: dict[str, list[int]] = {}  # family: [copies, found, false]
    for name, library in libraries.items():
        batch = {str(v.path): v.source for v in ours if v.transform == name}
        matched = {m.path: Path(m.match).stem for m in recorded(library) if m.path in batch}
        found = sum(1 for path, stem in matched.items() if stem == batch[path])
        wrong = len(matched) - found
        if batch:
            rows.append(f"| {name} | {len(batch)} | {found} | {wrong} | {found / len(batch):.3f} |")
        for path, stem in batch.items():
            tally = by_family.setdefault(family[stem], [0, 0, 0])
            tally[0] += 1
            tally[1] += matched.get(path) == stem
            tally[2] += path in matched and matched[path] != stem
    out += ["", *rows, ""]
    for name, (copies, found, wrong) in by_family.items():
        out.append(f"{name}: {found}/{copies} copies found (recall {found / copies:.3f}),"
                   f" {wrong} false pairs")
    return "\n".join(out)
