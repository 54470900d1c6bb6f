"""Borders cut off before fingerprinting (issue 15): flat pads, and a photo padded to a square
with a blurred, enlarged copy of itself, as sharing apps do."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dupwatch.bench.variants import EDIT_TRANSFORMS
from dupwatch.borders import unbordered
from dupwatch.decode import decode
from dupwatch.errors import ExitCode
from tests.conftest import PHOTOS, SAMPLES, open_rgb, run

# The photos that are not square (a square one needs no pad), and the first of them turned to
# portrait, so that both axes are padded.
OBLONG = [name for name in PHOTOS if Image.open(SAMPLES / name).size[0] != Image.open(SAMPLES / name).size[1]]
CASES = [(name, False) for name in OBLONG] + [(OBLONG[0], True)]


def photo(name: str, portrait: bool) -> Image.Image:
    image = open_rgb(SAMPLES / name)
    return image.transpose(Image.Transpose.ROTATE_90) if portrait else image


def padded_box(image: Image.Image) -> tuple[float, float, float, float]:
    """Where `image` sits, as shares of the side, on the square the pad transforms make of it."""
    w, h = image.size
    side = max(w, h)
    x, y = (side - w) // 2, (side - h) // 2
    return x / side, y / side, (x + w) / side, (y + h) / side


def found_box(data: bytes, min_size: int) -> tuple[float, float, float, float] | None:
    """The box `unbordered` keeps of a file decoded as the pipeline does, as shares of the side."""
    image = decode("copy.jpg", data, min_size).image
    _, box = unbordered(image)
    if box is None:
        return None
    return box[0] / image.width, box[1] / image.height, box[2] / image.width, box[3] / image.height


@pytest.mark.parametrize("pad", ["pad-blur", "pad-white", "pad-black"])
@pytest.mark.parametrize(("name", "portrait"), CASES)
def test_a_padded_photo_is_cut_back_to_itself(name: str, portrait: bool, pad: str) -> None:
    """Decoded small (as the default mode does) or large (as geometry does), the pad is cut off
    and the photo kept, to within a few percent of the side."""
    image = photo(name, portrait)
    _, data = EDIT_TRANSFORMS[pad](image)
    for min_size in (64, 600):
        box = found_box(data, min_size)
        assert box is not None, (name, pad, min_size)
        assert max(abs(a - b) for a, b in zip(box, padded_box(image), strict=True)) < 0.04, \
            (name, pad, min_size, box)


@pytest.mark.parametrize("name", PHOTOS)
def test_a_photo_with_no_pad_is_not_cut(name: str) -> None:
    """Nor are its copies re-encoded: a cut that comes and goes between copies splits them."""
    image = open_rgb(SAMPLES / name)
    for fmt in ("JPEG", "PNG", "WEBP"):
        buf = io.BytesIO()
        image.save(buf, fmt)
        assert found_box(buf.getvalue(), 64) is None, (name, fmt)


def test_a_photo_under_its_own_plain_sky_is_not_cut() -> None:
    """A smooth sky above a detailed photo meets it at a seam, as a blurred band would; it is
    the photo's own, on one side only, and stays."""
    ground = open_rgb(SAMPLES / "coffee.png")
    w, h = ground.size
    sky = Image.linear_gradient("L").resize((w, h // 3)).point(lambda v: 110 + v // 3).convert("RGB")
    sky = sky.filter(ImageFilter.GaussianBlur(4))
    scene = Image.new("RGB", (w, h + h // 3))
    scene.paste(sky, (0, 0))
    scene.paste(ground, (0, h // 3))
    # Sensor noise, so that the sky is not flat fill.
    noise = np.random.default_rng(1).normal(0, 1.5, (scene.height, scene.width, 1))
    scene = Image.fromarray(np.clip(np.asarray(scene, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    scene.save(buf, "JPEG", quality=90)
    for min_size in (64, 600):
        assert found_box(buf.getvalue(), min_size) is None


def test_a_scan_finds_the_copies_padded_with_their_own_blur(photos: Path, tmp_path: Path) -> None:
    """In the default install (geometry off), each photo padded to a square with a blurred,
    enlarged copy of itself is found as a copy of its original, and nothing else is paired.
    Hubble's stars do not survive a 32×32 grid (as in test_blind_spots)."""
    wanted = {}
    for name in OBLONG:
        if name == "hubble_deep_field.jpg":
            continue
        suffix, data = EDIT_TRANSFORMS["pad-blur"](open_rgb(photos / name))
        copy = f"zz-{Path(name).stem}-pad-blur{suffix}"
        (photos / copy).write_bytes(data)
        wanted[copy] = name
    config = tmp_path / "config.yaml"
    config.write_text("geometry:\n  enabled: false\n")
    result = run("scan", photos, "--json", "--cache", tmp_path / "c.db", "--config", config)
    assert result.code == ExitCode.OK, result.err
    found = {Path(d["path"]).name: Path(d["match"]).name for d in result.events("duplicate")}
    assert found == wanted
