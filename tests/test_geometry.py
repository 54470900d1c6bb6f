"""The geometry method (SIFT + MAGSAC) on real photos: hard edits confirmed, repetitive traps not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from dupwatch.bench.variants import HARD_TRANSFORMS, TRANSFORMS, _centre_crop
from dupwatch.compare import compare_files
from dupwatch.errors import ConfigError, ExitCode
from dupwatch.methods.geometry import Features, Geometry, extract, verify
from dupwatch.record import Match
from tests.conftest import SAMPLES, open_rgb, run

pytest.importorskip("cv2", reason="the geometry extra is installed by `make test`")

GEOMETRY = Geometry()


def _scores(a: Path, b: Path) -> dict[str, dict[str, object]]:
    scores = compare_files(str(a), str(b), ("cosine", "geometry")).scores
    return {s.method: {"score": s.score, "duplicate": s.duplicate, **(s.geometry or {})} for s in scores}


@pytest.mark.parametrize(("edit", "check"), [
    ("crop-60", lambda g: 1.5 < g["scale"] < 1.8 and abs(g["rotation"]) < 2 and not g["mirrored"]),
    ("straighten25", lambda g: 23 < g["rotation"] < 27 and 1.1 < g["scale"] < 1.8 and not g["mirrored"]),
    ("mirror", lambda g: g["mirrored"] and abs(g["rotation"]) < 2 and 0.95 < g["scale"] < 1.05),
])
def test_hard_edits_are_confirmed_with_the_transform_they_made(
    edit: str, check: object, photos: Path, tmp_path: Path
) -> None:
    original = photos / "chelsea.png"
    transform = _centre_crop(0.6) if edit == "crop-60" else TRANSFORMS[edit]
    copy = tmp_path / f"copy{transform(open_rgb(original))[0]}"
    copy.write_bytes(transform(open_rgb(original))[1])
    scores = _scores(copy, original)
    assert scores["geometry"]["duplicate"], scores
    assert callable(check) and check(scores["geometry"]), scores["geometry"]
    assert not scores["cosine"]["duplicate"]  # the global pixel score alone misses it


def _halves(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The left and right 45 % of an image: the same texture, no pixel in common."""
    w, h = image.size
    return image.crop((0, 0, int(w * 0.45), h)), image.crop((w - int(w * 0.45), 0, w, h))


@pytest.mark.parametrize("name", ["brick.png", "grass.png", "gravel.png", "chessboard_RGB.png"])
def test_repetitive_structure_is_not_confirmed(name: str) -> None:
    left, right = _halves(open_rgb(SAMPLES / name))
    for a, b in [(left, right), (ImageOps.mirror(left), right), (right, left)]:
        verdict = verify(extract(a), extract(b))
        assert verdict.score == 0.0, (name, verdict)


def test_different_photos_are_not_confirmed(photos: Path) -> None:
    names = sorted(p.name for p in photos.iterdir())
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert _scores(photos / a, photos / b)["geometry"]["score"] == 0.0, (a, b)


def test_features_survive_packing_and_the_cache(photos: Path, tmp_path: Path) -> None:
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(_centre_crop(0.6)(open_rgb(photos / "coffee.png"))[1])
    config = tmp_path / "robust.yaml"
    config.write_text("robust:\n  enabled: true\n")
    cache = tmp_path / "c.db"
    assert run("scan", photos, crop, "--cache", cache, "--config", config).code == ExitCode.OK
    with sqlite3.connect(cache) as db:
        stored = dict(db.execute(
            "SELECT f.path, p.data FROM grids p JOIN files f ON f.id = p.file_id WHERE p.method = ?",
            (GEOMETRY.key,)))
    assert set(stored) >= {str(crop), str(photos / "coffee.png")}
    cached = GEOMETRY.verdict(GEOMETRY.from_bytes(stored[str(crop)]),
                              GEOMETRY.from_bytes(stored[str(photos / "coffee.png")]))
    fresh = _scores(crop, photos / "coffee.png")["geometry"]
    # The same decision; the count may differ by a keypoint or two: `compare` decodes to grey
    # directly, the scan converts colour, and stored positions are rounded to 1/16 px.
    assert cached.score >= GEOMETRY.default_threshold and fresh["duplicate"]
    assert abs(cached.inliers - int(str(fresh["inliers"]))) <= 3
    # 400 keypoints of 132 bytes at most, and a 4-byte header
    assert max(len(v) for v in stored.values()) <= 4 + 400 * 132
    features = Features.unpack(GEOMETRY.from_bytes(stored[str(crop)]))
    assert Features.unpack(features.pack()).points.tolist() == features.points.tolist()


def test_robust_scan_reports_a_rotated_copy_with_its_geometry(photos: Path, tmp_path: Path) -> None:
    turned = photos / "zz-coffee-turned.jpg"
    turned.write_bytes(HARD_TRANSFORMS["straighten25"](open_rgb(photos / "coffee.png"))[1])
    mirrored = photos / "zz-astronaut-mirrored-crop.jpg"
    mirrored.write_bytes(_centre_crop(0.7)(ImageOps.mirror(open_rgb(photos / "astronaut.png")))[1])
    config = tmp_path / "robust.yaml"
    config.write_text("robust:\n  enabled: true\n")
    result = run("scan", photos, "--json", "--cache", tmp_path / "c.db", "--config", config)
    assert result.code == ExitCode.OK, result.err
    found = {Path(d["path"]).name: d for d in result.events("duplicate")}
    assert Path(found[turned.name]["match"]).name == "coffee.png"
    assert found[turned.name]["method"] == "geometry"
    assert 23 < found[turned.name]["geometry"]["rotation"] < 27
    assert Path(found[mirrored.name]["match"]).name == "astronaut.png"
    assert found[mirrored.name]["geometry"]["mirrored"] is True
    assert set(found) == {turned.name, mirrored.name}  # and nothing else
    # The text report says how the copy was made.
    text = run("scan", photos, "--cache", tmp_path / "text.db", "--config", config)
    assert "turned 25° counter-clockwise" in text.out and "mirrored" in text.out


def test_geometry_can_be_switched_off(photos: Path, tmp_path: Path) -> None:
    turned = photos / "zz-coffee-turned.jpg"
    turned.write_bytes(HARD_TRANSFORMS["straighten25"](open_rgb(photos / "coffee.png"))[1])
    config = tmp_path / "robust.yaml"
    config.write_text("robust:\n  enabled: true\ngeometry:\n  enabled: false\n")
    result = run("scan", photos, "--json", "--cache", tmp_path / "c.db", "--config", config)
    assert all(d["method"] != "geometry" for d in result.events("duplicate"))
    assert turned.name not in {Path(d["path"]).name for d in result.events("duplicate")}


def test_grey_zone_config_names_the_key(tmp_path: Path) -> None:
    from dupwatch import config as configuration

    with pytest.raises(ConfigError) as err:
        configuration.parse({"geometry": {"verify_from": {"cnnn": 0.4}}})
    assert "geometry.verify_from" in str(err.value) and "cnnn" in str(err.value)


def test_match_record_keeps_its_fields_and_adds_geometry() -> None:
    plain = Match("a", "b", "near", "cosine", 0.95, 3).to_json()
    found = Match("a", "b", "near", "geometry", 0.9, 20, None, {"inliers": 200}).to_json()
    assert "geometry" not in plain
    assert {k: v for k, v in found.items() if k != "geometry"}.keys() == plain.keys()
    assert found["geometry"] == {"inliers": 200}


def test_geometry_is_a_registered_method() -> None:
    assert isinstance(GEOMETRY, Geometry) and GEOMETRY.name == "geometry"


def test_a_featureless_image_has_no_keypoints_and_confirms_nothing() -> None:
    flat = extract(Image.new("RGB", (4000, 1000), (90, 90, 90)))
    assert (flat.width, flat.height, len(flat.points)) == (640, 160, 0)
    assert Features.unpack(flat.pack()).width == 640
    assert verify(flat, extract(open_rgb(SAMPLES / "coffee.png"))).score == 0.0
