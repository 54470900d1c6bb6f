"""Pairs that are NOT duplicates but share what fools local features: repetition and symmetry.

A façade of identical windows, tiles, foliage, a field of wheat, open sky: two parts of such a
photo hold the same texture and no pixel in common, so a homography can line up many features
between them. Every trap here is built from one real photo: its left and right 45 % (a gap
between), its top and bottom 45 %, and its left part mirrored against its right (a symmetric
building). Different photos of such scenes, paired with each other, are traps too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

# Scenes of the shared photo set (file name words) with repetitive or symmetric structure.
REPETITIVE = ("facade", "skyscraper", "warehouse", "cloister", "subway", "vineyard", "wind_farm",
              "stadium", "medina", "forest", "wheat", "hayfield", "desert", "ice_shelf", "coral",
              "candy", "viaduct", "aqueduct", "boardwalk", "railway", "temple", "monastery", "mosque",
              "abbey", "pagoda", "brewery", "village", "refinery", "field", "pasture", "marsh",
              "swamp", "canyon", "badlands", "cathedral", "inn", "house", "barn", "chalet", "ruin")
KEEP = 0.45


@dataclass(frozen=True)
class Trap:
    name: str  # "<photo stem>: left|right", ...
    a: Image.Image
    b: Image.Image


def repetitive(photos: Sequence[Path]) -> list[Path]:
    return [p for p in photos if any(word in p.stem for word in REPETITIVE)]


def traps_of(photo: Path) -> Iterator[Trap]:
    with Image.open(photo) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    w, h = image.size
    side, tall = int(w * KEEP), int(h * KEEP)
    left, right = image.crop((0, 0, side, h)), image.crop((w - side, 0, w, h))
    top, bottom = image.crop((0, 0, w, tall)), image.crop((0, h - tall, w, h))
    yield Trap(f"{photo.stem}: left | right", left, right)
    yield Trap(f"{photo.stem}: top | bottom", top, bottom)
    yield Trap(f"{photo.stem}: left mirrored | right", ImageOps.mirror(left), right)
