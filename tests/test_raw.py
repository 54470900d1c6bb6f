"""Camera raw files: real DNGs (tests/dng.py) of real photographs, decoded by LibRaw from their
embedded preview or their sensor data, upright, found as duplicates, broken ones skipped; a
camera's RAW+JPEG siblings are one shot, not a duplicate."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dupwatch.decode import decode
from dupwatch.errors import ExitCode
from dupwatch.raw import siblings
from tests.conftest import SAMPLES, open_rgb, run, run_process
from tests.dng import dng_bytes, write_dng

# How a camera held the photo, for each EXIF orientation: the inverse of what the tag asks a
# viewer to do (LibRaw's flip: 3 → 3, 8 → 5, 6 → 6).
STORED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return open_rgb(SAMPLES / "coffee.png")  # 600×400


def likeness(a: Image.Image, b: Image.Image) -> float:
    """Correlation of the two images' luminance at a's size: 1 is the same picture; turned or
    another photo, far less. Colour and tone curves do not count, as for the confirm methods."""
    x = np.asarray(a.convert("L"), dtype=np.float64).ravel()
    y = np.asarray(b.convert("L").resize(a.size, Image.Resampling.BOX), dtype=np.float64).ravel()
    return float(np.corrcoef(x, y)[0, 1])


def stored_as(photo: Image.Image, orientation: int) -> Image.Image:
    return photo.transpose(STORED[orientation]) if orientation in STORED else photo


def test_the_jpeg_preview_is_decoded_at_the_photo_s_full_size(coffee: Image.Image) -> None:
    decoded = decode("/photos/IMG_0001.DNG", dng_bytes(coffee), 64)
    assert decoded.format == "RAW (DNG)"
    assert (decoded.width, decoded.height) == (600, 400)  # not the 256×171 thumbnail's
    assert decoded.image.size == (150, 100)  # the 600×400 preview, draft-decoded at 1/4
    assert likeness(decoded.image, coffee) > 0.99


def _exif(**tags: int | str) -> Image.Exif:
    exif = Image.Exif()
    names = {"make": 271, "orientation": 274}
    for name, value in tags.items():
        exif[names[name]] = value
    return exif


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("preview", [
    "LibRaw's EXIF",  # a preview without EXIF: LibRaw adds one that says the raw's orientation
    "own EXIF, no orientation",  # a camera's EXIF: dupwatch turns it as the raw says
    "own EXIF, 1",  # likewise: 1 is no turn of its own
    "own EXIF, the same orientation",  # turned once, not twice
])
def test_the_raw_s_orientation_turns_its_preview(coffee: Image.Image, orientation: int, preview: str) -> None:
    exif = {"LibRaw's EXIF": None, "own EXIF, no orientation": _exif(make="Dupwatch"),
            "own EXIF, 1": _exif(orientation=1),
            "own EXIF, the same orientation": _exif(orientation=orientation)}[preview]
    data = dng_bytes(stored_as(coffee, orientation), orientation, preview_exif=exif)
    decoded = decode("IMG_0001.dng", data, 400)
    assert (decoded.width, decoded.height) == coffee.size
    assert decoded.image.size == coffee.size
    assert likeness(decoded.image, coffee) > 0.99  # turned by 180° instead: -0.26


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_without_a_big_enough_preview_the_sensor_data_is_decoded(coffee: Image.Image,
                                                                  orientation: int) -> None:
    data = dng_bytes(stored_as(coffee, orientation), orientation, preview=False)
    thumbnail = decode("IMG_0001.dng", data, 64)  # the 256-pixel thumbnail in IFD0 is enough
    assert thumbnail.image.size in ((256, 171), (171, 256))
    demosaiced = decode("IMG_0001.dng", data, 300)  # it is not: LibRaw renders the mosaic
    assert demosaiced.image.size == (coffee.width // 2, coffee.height // 2)  # half size, upright
    assert (thumbnail.width, thumbnail.height) == (demosaiced.width, demosaiced.height) == coffee.size
    for decoded in (thumbnail, demosaiced):
        assert likeness(decoded.image, coffee) > 0.98
    # LibRaw's own colour and tone rendering: the same colours, give or take a tone curve.
    reference = coffee.resize(demosaiced.image.size, Image.Resampling.BOX)
    diff = np.abs(np.asarray(demosaiced.image, dtype=np.float64) - np.asarray(reference, dtype=np.float64))
    assert diff.mean() < 20


def _widths(cache: Path) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(cache) as db:
        return {Path(p).name: (w, h) for p, w, h in db.execute("SELECT path, width, height FROM files")}


@pytest.mark.parametrize(("orientation", "preview"), [(1, True), (6, True), (1, False)])
def test_a_raw_of_a_photo_is_its_duplicate(photos: Path, cache: Path, coffee: Image.Image,
                                           orientation: int, preview: bool) -> None:
    # Without a preview, a 48-pixel thumbnail is all the DNG has below the 64 pixels the
    # methods ask for: the sensor data is decoded.
    data = dng_bytes(stored_as(coffee, orientation), orientation, preview, thumbnail=256 if preview else 48)
    (photos / "IMG_0001.DNG").write_bytes(data)
    result = run("scan", photos, "--json", "--cache", cache)
    assert result.code == ExitCode.OK, result.err
    [duplicate] = result.events("duplicate")
    # Upper case sorts first: the DNG is indexed before coffee.png, which then duplicates it.
    assert (Path(duplicate["path"]).name, Path(duplicate["match"]).name) == ("coffee.png", "IMG_0001.DNG")
    assert duplicate["kind"] == "near" and duplicate["method"] == "cosine"
    assert duplicate["score"] >= 0.93
    sizes = _widths(cache)
    assert sizes["IMG_0001.DNG"] == sizes["coffee.png"] == (600, 400)  # upright, full size
    assert result.events("summary")[0]["indexed"] == 9


def test_broken_raw_files_are_skipped_with_a_reason(photos: Path, cache: Path, coffee: Image.Image) -> None:
    data = dng_bytes(coffee)
    (photos / "cut.dng").write_bytes(data[: len(data) // 2])  # an interrupted copy
    (photos / "notes.nef").write_text("not a photo, whatever its name says\n" * 20)
    (photos / "empty.cr2").write_bytes(b"")
    expected = {"cut.dng": "corrupt or truncated raw file", "notes.nef": "not a raw file LibRaw can read",
                "empty.cr2": "empty file"}
    # Two worker processes, as a scan runs by default: a bad raw file must not take one down.
    result = run_process("scan", photos, "--json", "--cache", cache, "--workers", "2")
    assert result.code == ExitCode.SKIPPED, result.err
    skipped = {Path(e["path"]).name: e["reason"] for e in result.events("skipped")}
    assert set(skipped) == set(expected)
    for name, reason in expected.items():
        assert reason in skipped[name]
        [line] = [ln for ln in result.err.splitlines() if name in ln]  # one line, naming the file
        assert reason in line
    assert result.events("summary")[0]["indexed"] == 8
    assert "rawpy" not in result.err  # no warning from rawpy about the worker processes


def _shot(coffee: Image.Image, raw: Path, jpeg: Path) -> None:
    """One shot as a camera writes it in RAW+JPEG: the raw, and its own rendering as a JPEG."""
    for path in (raw, jpeg):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_dng(coffee, raw)
    coffee.save(jpeg, quality=92)


def _pairs(duplicates: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(Path(d["path"]).name, Path(d["match"]).name) for d in duplicates}


def test_raw_and_jpeg_siblings_are_one_shot_not_a_duplicate(tmp_path: Path, coffee: Image.Image) -> None:
    shots = tmp_path / "shots"
    _shot(coffee, shots / "IMG_0001.DNG", shots / "img_0001.jpg")
    shutil.copy(SAMPLES / "astronaut.png", shots / "IMG_0002.png")
    quiet = run("scan", shots, "--json", "--cache", tmp_path / "a.db")
    assert quiet.code == ExitCode.OK, quiet.err
    assert quiet.events("duplicate") == [] and quiet.events("summary")[0]["indexed"] == 3

    config = tmp_path / "siblings.yaml"
    config.write_text("candidates:\n  report_raw_siblings: true\n")
    told = run("scan", shots, "--json", "--cache", tmp_path / "b.db", "--config", config)
    assert _pairs(told.events("duplicate")) == {("img_0001.jpg", "IMG_0001.DNG")}


def test_siblings_in_two_folders_are_duplicates(tmp_path: Path, coffee: Image.Image) -> None:
    _shot(coffee, tmp_path / "card" / "IMG_0001.DNG", tmp_path / "phone" / "IMG_0001.JPG")
    result = run("scan", tmp_path / "card", tmp_path / "phone", "--json", "--cache", tmp_path / "c.db")
    assert _pairs(result.events("duplicate")) == {("IMG_0001.JPG", "IMG_0001.DNG")}


def test_past_its_sibling_a_jpeg_still_finds_another_duplicate(tmp_path: Path, coffee: Image.Image) -> None:
    shots = tmp_path / "shots"
    _shot(coffee, shots / "IMG_0001.DNG", shots / "IMG_0001.JPG")
    shutil.copy(SAMPLES / "coffee.png", shots / "0001 coffee.png")  # indexed first
    result = run("scan", shots, "--json", "--cache", tmp_path / "d.db")
    assert _pairs(result.events("duplicate")) == {("IMG_0001.DNG", "0001 coffee.png"),
                                                  ("IMG_0001.JPG", "0001 coffee.png")}


@pytest.mark.parametrize(("a", "b", "same_shot"), [
    ("/p/IMG_0001.CR2", "/p/IMG_0001.JPG", True),
    ("/p/IMG_0001.JPG", "/p/IMG_0001.CR2", True),
    ("/p/IMG_0001.nef", "/p/img_0001.jpeg", True),
    ("/p/DSC_0001.ARW", "/p/DSC_0001.HEIC", True),
    ("/p/IMG_0001.CR2", "/p/IMG_0001.DNG", False),  # both raw: a converted copy is a duplicate
    ("/p/IMG_0001.JPG", "/p/IMG_0001.png", False),  # neither
    ("/p/IMG_0001.CR2", "/q/IMG_0001.JPG", False),  # other folders
    ("/p/IMG_0001.CR2", "/p/IMG_0001-edit.JPG", False),
])
def test_siblings_by_name(a: str, b: str, same_shot: bool) -> None:
    assert siblings(a, b) is same_shot


def test_compare_a_raw_with_a_photo(tmp_path: Path, coffee: Image.Image) -> None:
    raw = write_dng(coffee.transpose(Image.Transpose.ROTATE_90), tmp_path / "IMG_0001.dng", orientation=6)
    result = run("compare", raw, SAMPLES / "coffee.png", "--method", "cosine", "--json")
    assert result.code == ExitCode.OK, result.err
    [record] = result.json()
    assert record["same_bytes"] is False
    assert record["scores"]["cosine"]["duplicate"] is True
