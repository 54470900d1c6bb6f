"""Photos turned onto a black or white canvas: turned back and cut out before any fingerprint."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dupwatch.canvas import canvas, straightened
from tests.conftest import PHOTOS, SAMPLES, open_rgb, run, scan_found


def _inner(image: Image.Image, margin: float = 0.02) -> Image.Image:
    w, h = image.size
    return image.crop((round(margin * w), round(margin * h),
                       round((1 - margin) * w), round((1 - margin) * h)))


def _difference(a: Image.Image, b: Image.Image) -> float:
    size = (96, 64)
    return float(np.abs(np.asarray(a.resize(size), dtype=np.float32)
                        - np.asarray(b.resize(size), dtype=np.float32)).mean())


# At quality 50 the ringing edge is rougher: at 25° the cut takes 1 % more a side (the methods'
# zooms absorb that; this test's pixel check does not), and at 40° the edge fails the rectangle
# test (0.68 of 0.75) and the photo is left on its canvas.
@pytest.mark.parametrize(("angle", "fill", "quality"), [
    *((angle, fill, None) for angle in (25, -10, 3, 40) for fill in ("black", "white")),
    *((angle, "black", 75) for angle in (25, -10, 3, 40)),
    *((angle, "black", 50) for angle in (-10, 3)),
])
def test_a_turned_photo_comes_back_upright_with_its_angle(angle: float, fill: str,
                                                          quality: int | None) -> None:
    def saved(image: Image.Image) -> Image.Image:  # as most editors and phones save: JPEG
        if quality is None:
            return image
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        return Image.open(out).convert("RGB")

    original = open_rgb(SAMPLES / "coffee.png")
    turned = saved(original.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=fill))
    assert canvas(np.asarray(turned)).mean() > 0.02  # the corners the turn left
    upright, turn = straightened(turned)
    assert abs(turn - angle) < 0.2
    # The whole photo, less the 2 % trimmed from each side (a JPEG's ringing edge moves the cut
    # by a pixel or two more), with no canvas left...
    near = 0.02 if quality is None else 0.03
    assert abs(upright.width / original.width - 0.96) < near, upright.size
    assert abs(upright.height / original.height - 0.96) < near, upright.size
    assert not canvas(np.asarray(upright)).any()
    # ...and upright: a mere 2° turn of the photo differs from it by 7.3 grey levels.
    assert _difference(upright, _inner(saved(original))) < 4  # the original as compressed as the copy
    assert _difference(_inner(original.rotate(2)), _inner(original)) > 6


def test_photos_with_dark_surroundings_of_their_own_are_left_alone() -> None:
    for name in PHOTOS:  # retina and hubble among them: black around, but no turned rectangle
        photo = open_rgb(SAMPLES / name)
        assert straightened(photo) == (photo, 0.0), name
    # A photo on black that is not a rectangle (a round vignette) is left alone too.
    photo = open_rgb(SAMPLES / "chelsea.png")
    round_mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(round_mask).ellipse((20, 20, photo.width - 20, photo.height - 20), fill=255)
    vignette = Image.composite(photo, Image.new("RGB", photo.size, "black"), round_mask)
    assert straightened(vignette)[1] == 0.0


def turned_copies_found(photos: Path, tmp_path: Path, angles: list[float], config: str) -> dict[str, str]:
    """Each of the test photos turned onto a black canvas beside it (zz-NAME-turned.jpg), the
    folder scanned with `config`: which file each duplicate names as its original."""
    for name, angle in zip(PHOTOS, angles, strict=True):
        turned = open_rgb(photos / name).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        turned.save(photos / f"zz-{Path(name).stem}-turned.jpg", quality=90)
    return scan_found(photos, tmp_path, config)


def test_the_default_mode_finds_copies_turned_onto_a_canvas(photos: Path, tmp_path: Path) -> None:
    """No CNN, no OpenCV needed: the hash and the pixel cosine see the photo, not its canvas."""
    found = turned_copies_found(photos, tmp_path, [25, -10, 15, 40, -25, 8, 30, -3],
                                "geometry:\n  enabled: false\n")
    # Not retina: its black surround is its own, so turned it is a disc on a canvas, not a
    # rectangle, and is left as it is. Not hubble's stars either: single bright pixels do not
    # survive the turn and the turn back at 32×32 (cosine 0.86; robust mode's job).
    missed = {"retina.jpg", "hubble_deep_field.jpg"}
    assert found == {f"zz-{Path(name).stem}-turned.jpg": name for name in PHOTOS if name not in missed}


def test_the_notice_says_how_far_one_was_turned_from_the_other(photos: Path, tmp_path: Path) -> None:
    coffee = open_rgb(photos / "coffee.png")
    coffee.rotate(25, resample=Image.Resampling.BICUBIC, expand=True).save(photos / "zz-coffee-turned.jpg")
    # Indexed before its original (names sort first): the turn is read back from the cache.
    chelsea = open_rgb(photos / "chelsea.png")
    chelsea.rotate(-10, resample=Image.Resampling.BICUBIC, expand=True).save(photos / "a-chelsea-turned.jpg")
    result = run("scan", photos, "--json", "--cache", tmp_path / "c.db")
    found = {Path(d["path"]).name: d for d in result.events("duplicate")}
    assert Path(found["zz-coffee-turned.jpg"]["match"]).name == "coffee.png"
    assert abs(found["zz-coffee-turned.jpg"]["turned"] - 25) < 0.3
    assert Path(found["chelsea.png"]["match"]).name == "a-chelsea-turned.jpg"
    assert abs(found["chelsea.png"]["turned"] - 10) < 0.3  # chelsea.png is turned back by +10°
    assert set(found) == {"zz-coffee-turned.jpg", "chelsea.png"}
    text = run("scan", photos, "--cache", tmp_path / "text.db").out
    assert "turned 25° counter-clockwise on a canvas" in text
    assert "turned 10° counter-clockwise on a canvas" in text
    # The notice keeps it: what the review page and `dupwatch notices` show.
    notices = run("notices", "--json", "--cache", tmp_path / "c.db").events("duplicate")
    assert sorted(round(n.get("turned", 0)) for n in notices) == [10, 25]


def test_compare_says_a_file_was_turned_on_a_canvas(tmp_path: Path) -> None:
    turned = tmp_path / "coffee turned.jpg"
    open_rgb(SAMPLES / "coffee.png").rotate(-12, expand=True, fillcolor="white").save(turned)
    text = run("compare", turned, SAMPLES / "coffee.png", "--method", "cosine")
    assert "coffee turned.jpg: turned 12° clockwise on a canvas; turned back and cut out first" in text.out
    assert "coffee.png:" not in text.out  # the upright one is not mentioned
    json = run("compare", turned, SAMPLES / "coffee.png", "--method", "cosine", "--json")
    [compared] = json.events("compare")
    assert abs(compared["turned"]["a"] + 12) < 0.3 and compared["turned"]["b"] == 0
    assert compared["scores"]["cosine"]["duplicate"]
