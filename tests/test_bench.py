"""`dupwatch bench`: the article's experiments, run for real on real photos (the CNN included)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from dupwatch.bench.samples import NAMES
from dupwatch.extras import install
from dupwatch.methods.registry import METHODS
from tests.conftest import PHOTOS, run

TRANSFORMS = ("copy", "jpeg-q50", "rot90", "text")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plots")


@pytest.fixture(scope="module")
def record(photo_dir: Path, plots: Path) -> dict[str, Any]:
    """One run of every method on the eight sample photographs, as JSON."""
    before = sorted((p.name, p.stat().st_mtime_ns) for p in photo_dir.iterdir())
    result = run("bench", photo_dir, "--json", "--plots", plots, "--transforms", ",".join(TRANSFORMS),
                 "--calls", "50")
    assert result.code == 0, result.err
    assert before == sorted((p.name, p.stat().st_mtime_ns) for p in photo_dir.iterdir())  # only read
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_one_entry_per_method_and_transform(record: dict[str, Any]) -> None:
    assert record["event"] == "bench"
    assert record["photos"] == 8
    assert [m["method"] for m in record["methods"]] == list(METHODS)  # the CNN with both distances too
    for m in record["methods"]:
        assert list(m["transforms"]) == list(TRANSFORMS)
        assert m["queries"] == 8 * len(TRANSFORMS)
        assert 0.0 <= m["accuracy"] <= 1.0
        assert m["seconds_per_pair"] > m["method_seconds_per_pair"] > 0


def test_exact_copies_are_always_found(record: dict[str, Any]) -> None:
    assert {m["method"]: m["transforms"]["copy"] for m in record["methods"]} == dict.fromkeys(METHODS, 1.0)


def test_cnn_is_robust_to_a_quarter_turn(record: dict[str, Any]) -> None:
    # The article's point about the CNN, seen on real photos: a 90° turn keeps most of its features.
    scores = {m["method"]: m["transforms"]["rot90"] for m in record["methods"]}
    assert scores["cnn"] >= 0.75
    assert scores["cnn"] == scores["cnn-euclidean"]  # the same ranking, by construction


def test_scipy_and_numpy_agree(record: dict[str, Any]) -> None:
    assert [n["length"] for n in record["norms"]] == [16 * 16 * 3, 256 * 256 * 3]
    for n in record["norms"]:
        assert n["calls"] == 50
        assert n["largest_difference"] < 1e-9
        assert n["scipy_seconds"] > 0 and n["numpy_seconds"] > 0


def test_charts_are_written(record: dict[str, Any], plots: Path) -> None:
    assert record["plots"] == [str(plots / "bench-accuracy-time.png"), str(plots / "bench-robustness.png")]
    for path in record["plots"]:
        data = Path(path).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000


def test_markdown_tables(photo_dir: Path) -> None:
    result = run("bench", photo_dir, "--methods", "hash,cosine", "--transforms", "copy,mirror",
                 "--limit", "5", "--calls", "10")
    assert result.code == 0, result.err
    assert "| method | accuracy (top 3) |" in result.out
    assert "| transform | hash | cosine |" in result.out
    assert "| copy | 1.00 | 1.00 |" in result.out
    assert "| 768 |" in result.out  # experiment 3


def test_default_photos_are_scikit_images_samples() -> None:
    result = run("bench", "--json", "--methods", "dhash", "--transforms", "copy", "--calls", "10")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["photos"] == len(NAMES)
    assert record["methods"][0]["transforms"] == {"copy": 1.0}


def test_a_bad_photo_is_skipped_and_named(photos: Path) -> None:
    broken = photos / "broken.jpg"
    broken.write_bytes((photos / "rocket.jpg").read_bytes()[:300])
    result = run("bench", photos, "--json", "--methods", "hash", "--transforms", "copy", "--calls", "10")
    assert result.code == 3
    assert f"skipped {broken}: corrupt or truncated image" in result.err
    record = json.loads(result.out)
    assert record["photos"] == 8
    assert record["skipped"][0]["path"] == str(broken)


@pytest.mark.parametrize("broken", [False, True], ids=["three photos", "three and a broken one"])
def test_too_few_photos(tmp_path: Path, photo_dir: Path, broken: bool) -> None:
    for name in ("astronaut.png", "coffee.png", "chelsea.png"):
        shutil.copy(photo_dir / name, tmp_path / name)
    if broken:
        (tmp_path / "broken.png").write_bytes(b"not a photo")
    result = run("bench", tmp_path, "--methods", "hash", "--transforms", "copy")
    assert result.code == 1
    assert "at least 4 photos that can be read; found 3" in result.err


@pytest.mark.parametrize(("args", "message"), [
    (["--methods", "hash,nope"], "--methods: unknown 'nope'; known: euclidean, ssim, hash"),
    (["--transforms", "spin"], "--transforms: unknown 'spin'; known: copy, jpeg-q50"),
    (["--limit", "0"], "--limit must be at least 1"),
])
def test_bad_arguments(photo_dir: Path, args: list[str], message: str) -> None:
    result = run("bench", photo_dir, *args)
    assert result.code == 2
    assert message in result.err


def test_not_a_folder(tmp_path: Path) -> None:
    result = run("bench", tmp_path / "missing")
    assert result.code == 1
    assert "missing: not a folder" in result.err


def test_missing_extra_is_named(photo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if matplotlib were not installed: the import system treats a None entry as absent.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("bench", photo_dir, "--plots", tmp_path)
    assert result.code == 1
    assert f"dupwatch bench needs matplotlib: {install('bench')}" in result.err


def test_photos_sharing_a_name_in_two_folders(tmp_path: Path, photo_dir: Path) -> None:
    for n, name in enumerate(PHOTOS):  # eight folders, each with its own IMG_0001
        (tmp_path / str(n)).mkdir()
        shutil.copy(photo_dir / name, tmp_path / str(n) / f"IMG_0001{Path(name).suffix}")
    result = run("bench", tmp_path, "--json", "--methods", "cosine", "--transforms", "copy", "--calls", "10")
    assert result.code == 0, result.err
    assert json.loads(result.out)["methods"][0]["transforms"] == {"copy": 1.0}


# --- dupwatch/bench/layouts.py: originals that share a layout or sit near black or white ----------

LAYOUT_COUNTS = {"product": 12, "screenshot": 12, "document": 12, "night": 18, "bright": 12, "tiny": 5}


@pytest.fixture(scope="module")
def layouts_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], list[Any]]:
    from benchmarks.common import SHARED_PHOTOS
    from dupwatch.bench.layouts import write_layouts
    from dupwatch.bench.variants import photo_paths

    photos = photo_paths(SHARED_PHOTOS)
    if len(photos) < 48:
        pytest.skip("the shared photos are not here")
    return (write_layouts(photos, tmp_path_factory.mktemp("layouts-a")),
            write_layouts(photos[::-1], tmp_path_factory.mktemp("layouts-b")))  # any order in


def _grey(path: Path) -> Any:
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.int16)


def test_layout_families_counts_and_sizes(layouts_twice: tuple[list[Any], list[Any]]) -> None:
    from PIL import Image

    made, _ = layouts_twice
    assert {f: sum(1 for m in made if m.family == f) for f in LAYOUT_COUNTS} == LAYOUT_COUNTS
    assert len({m.path.stem for m in made}) == len(made)  # stems name the ground truth
    sizes = {"product": {(800, 800)}, "screenshot": {(720, 1560)}, "document": {(850, 1100)},
             "tiny": {(8, 12), (32, 32), (16, 16), (1, 1), (64, 64)}}
    for m in made:
        assert m.path.parent.name == m.family and m.path.read_bytes().startswith(PNG)
        assert m.variants == (m.family != "tiny")
        with Image.open(m.path) as im:
            if m.family in sizes:
                assert im.size in sizes[m.family], m.path
            elif m.path.stem.startswith("night_stars"):
                assert im.size == (1000, 700)
    night = [_grey(m.path) for m in made if m.family == "night"]
    assert all((g < 20).mean() >= 0.8 for g in night)
    assert all(g.max() >= 40 for g in night)  # a few bright areas remain
    bright = [_grey(m.path) for m in made if m.family == "bright"]
    assert all((g > 235).mean() >= 0.8 and g.std() > 1 for g in bright)  # faint detail left


def test_layouts_are_deterministic(layouts_twice: tuple[list[Any], list[Any]]) -> None:
    a, b = layouts_twice
    assert [m.path.name for m in a] == [m.path.name for m in b]
    assert [m.source for m in a] == [m.source for m in b]
    for x, y in zip(a, b, strict=True):
        assert x.path.read_bytes() == y.path.read_bytes(), x.path.name


@pytest.mark.parametrize(("family", "frame", "inside"), [
    # (family, a window that is the shared frame, a window where the content differs)
    ("product", (slice(0, 800), slice(0, 180)), (slice(300, 500), slice(300, 500))),
    ("screenshot", (slice(0, 200), slice(0, 720)), (slice(300, 700), slice(40, 680))),
    ("document", (slice(0, 1100), slice(0, 85)), (slice(160, 900), slice(90, 760))),
])
def test_a_family_shares_its_layout(layouts_twice: tuple[list[Any], list[Any]], family: str,
                                    frame: tuple[slice, slice], inside: tuple[slice, slice]) -> None:
    pages = [_grey(m.path) for m in layouts_twice[0] if m.family == family]
    first = pages[0]
    for other in pages[1:]:
        assert (other[frame] == first[frame]).all()
        assert abs(other[inside] - first[inside]).mean() > 2
    if family == "screenshot":  # the bottom navigation bar too
        assert all((p[-140:] == first[-140:]).all() for p in pages)
