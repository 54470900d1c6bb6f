"""Two shots are not two copies: photos one camera took at different moments (EXIF) are never
duplicates, however alike; an edit, a copy whose clock was set right and a stripped copy still are."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dupwatch import keeper
from dupwatch.errors import ExitCode
from dupwatch.shots import apart, stamp
from tests.conftest import SAMPLES, open_rgb, run

CANON = "Canon EOS R5"


def exif(taken: str = "2024:05:01 10:00:00", subsec: str | None = "10", model: str = "EOS R5") -> Image.Exif:
    tags = Image.Exif()
    tags[271], tags[272] = "Canon", model
    sub = tags.get_ifd(0x8769)
    sub[36867] = taken
    if subsec is not None:
        sub[37521] = subsec
    return tags


@pytest.mark.parametrize(("a", "b", "seconds"), [
    (f"{CANON}|2024:05:01 10:00:00|10", f"{CANON}|2024:05:01 10:00:00|35", 0.25),  # a burst's frames
    (f"{CANON}|2024:05:01 10:00:00|10", f"{CANON}|2024:05:01 10:00:03|10", 3.0),  # a second try
    (f"{CANON}|2024:05:01 10:00:00|", f"{CANON}|2024:05:01 10:00:00|35", None),  # one lost its fraction
    (f"{CANON}|2024:05:01 10:00:00|10", f"{CANON}|2024:05:01 12:00:00|10", None),  # a clock set right
    (f"{CANON}|2024:05:01 10:00:00|10", f"{CANON}|2024:05:01 10:00:00|10", None),  # one moment: copies
    (f"{CANON}|2024:05:01 10:00:00|10", "Nikon Z 6|2024:05:01 10:00:03|10", None),  # two cameras
    (f"{CANON}|2024:05:01 10:00:00|10", None, None),  # a stripped copy: the pixels decide
    (f"{CANON}|2024:05:01 10:00:00|10", "garbage", None),
])
def test_two_shots_are_told_apart_by_camera_and_moment(a: str, b: str | None, seconds: float | None) -> None:
    if seconds is None:
        assert apart(a, b) is None
    else:
        assert apart(a, b) == pytest.approx(seconds)
    assert apart(b, a) == apart(a, b)


def test_a_stamp_needs_a_camera_and_a_moment() -> None:
    tags = exif()
    assert stamp(tags, tags.get_ifd(0x8769)) == f"{CANON}|2024:05:01 10:00:00|10"
    tags = exif(taken="0000:00:00 00:00:00")  # what some cameras write with no clock set
    assert stamp(tags, tags.get_ifd(0x8769)) is None
    assert stamp({}, {36867: "2024:05:01 10:00:00"}) is None
    # A tag may hold anything: the stamp stays one bounded line.
    hostile = stamp({271: "Ca|non\n" * 1000, 272: "X"}, {36867: "2024:05:01 10:00:00", 37521: "1" * 500})
    assert hostile is not None and hostile.count("|") == 2 and "\n" not in hostile and len(hostile) < 160


def test_a_burst_is_not_a_duplicate_but_an_edit_of_one_frame_is(tmp_path: Path) -> None:
    coffee = open_rgb(SAMPLES / "coffee.png")
    shots = tmp_path / "shots"
    shots.mkdir()
    coffee.save(shots / "IMG_0001.JPG", quality=92, exif=exif())
    # The next frame of a burst, a quarter of a second later: the camera moved by a few pixels.
    w, h = coffee.size
    coffee.crop((8, 0, w, h)).resize((w, h)).save(shots / "IMG_0002.JPG", quality=92, exif=exif(subsec="35"))
    # Copies of the first frame: an export at half size, and one whose clock was set right.
    coffee.resize((w // 2, h // 2)).save(shots / "IMG_0001 (edit).jpg", quality=70, exif=exif())
    coffee.save(shots / "IMG_0001 (clock).jpg", quality=80, exif=exif(taken="2024:05:01 12:00:00"))
    assert keeper.read_header(str(shots / "IMG_0002.JPG")).taken == f"{CANON}|2024:05:01 10:00:00|35"

    result = run("scan", shots, "--json", "--cache", tmp_path / "a.db")
    assert result.code == ExitCode.OK, result.err
    told = {Path(d["path"]).name for d in result.events("duplicate")}
    assert told == {"IMG_0001 (edit).jpg", "IMG_0001.JPG"}  # the clock-fixed copy came first

    compared = run("compare", shots / "IMG_0001.JPG", shots / "IMG_0002.JPG", "--method", "cosine")
    assert "two shots: one camera took them 0.25 s apart (EXIF)" in compared.out
    edited = run("compare", shots / "IMG_0001.JPG", shots / "IMG_0001 (edit).jpg", "--method", "cosine")
    assert "two shots" not in edited.out

    # Asked for what is like it, the burst's frame lists the first one, as no duplicate.
    queried = run("query", shots / "IMG_0002.JPG", "--cache", tmp_path / "a.db", "--json")
    listed = {Path(e["path"]).name: e["duplicate"] for e in queried.json()}
    assert listed["IMG_0001.JPG"] is False and listed["IMG_0001 (edit).jpg"] is False

    # By its pixels alone, the burst's frame is a duplicate.
    config = tmp_path / "pixels.yaml"
    config.write_text("candidates:\n  report_other_shots: true\n")
    result = run("scan", shots, "--json", "--cache", tmp_path / "b.db", "--config", config)
    assert {Path(d["path"]).name for d in result.events("duplicate")} == {*told, "IMG_0002.JPG"}


def test_a_copy_that_lost_its_exif_is_judged_by_its_pixels(tmp_path: Path) -> None:
    coffee = open_rgb(SAMPLES / "coffee.png")
    shots = tmp_path / "shots"
    shots.mkdir()
    coffee.save(shots / "IMG_0001.JPG", quality=92, exif=exif())
    coffee.save(shots / "IMG_0001 (sent).jpg", quality=60)  # a messenger strips the EXIF
    result = run("scan", shots, "--json", "--cache", tmp_path / "a.db")
    assert [Path(d["path"]).name for d in result.events("duplicate")] == ["IMG_0001.JPG"]
