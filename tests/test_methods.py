"""Every registered method: a score in [0, 1], 1 for the same image, above its threshold for an
edited copy and below it for a different photograph."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from dupwatch.errors import ConfigError
from dupwatch.methods.base import small_gray
from dupwatch.methods.cosine import OCCLUSION_COST, Cosine
from dupwatch.methods.registry import METHODS, get_method
from dupwatch.pipeline import TURNED_THRESHOLD
from tests.conftest import SAMPLES, open_rgb


def _reencoded(image: Image.Image, quality: int = 60) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return open_rgb(SAMPLES / "astronaut.png")


@pytest.mark.parametrize("name", list(METHODS))
def test_identical_scores_one(name: str, astronaut: Image.Image) -> None:
    method = get_method(name)
    fp = method.fingerprint(astronaut)
    if name == "geometry":
        # It counts evidence (inliers / (inliers + 25)): 400 of 400 keypoints is near 1, not 1.
        assert 0.9 < method.compare(fp, fp) < 1.0
    else:
        assert method.compare(fp, fp) == pytest.approx(1.0)


@pytest.mark.parametrize("name", list(METHODS))
def test_reencoded_copy_is_a_duplicate(name: str, astronaut: Image.Image) -> None:
    method = get_method(name)
    score = method.compare(method.fingerprint(astronaut), method.fingerprint(_reencoded(astronaut)))
    assert method.default_threshold <= score <= 1.0


@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("other", ["chelsea.png", "coffee.png", "rocket.jpg"])
def test_different_photo_is_not(name: str, other: str, astronaut: Image.Image) -> None:
    method = get_method(name)
    score = method.compare(method.fingerprint(astronaut), method.fingerprint(open_rgb(SAMPLES / other)))
    assert 0.0 <= score < method.default_threshold


@pytest.mark.parametrize("name", list(METHODS))
def test_fingerprint_survives_bytes(name: str, astronaut: Image.Image) -> None:
    method = get_method(name)
    fp = method.fingerprint(astronaut)
    assert np.array_equal(method.from_bytes(method.to_bytes(fp)), fp)


def test_cosine_ignores_brightness_and_small_crops(astronaut: Image.Image) -> None:
    cosine = get_method("cosine")
    w, h = astronaut.size
    brighter = ImageEnhance.Brightness(astronaut).enhance(1.25)
    cropped = astronaut.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    base = cosine.fingerprint(astronaut)
    assert cosine.compare(base, cosine.fingerprint(brighter)) >= cosine.default_threshold
    assert cosine.compare(base, cosine.fingerprint(cropped)) >= cosine.default_threshold


@pytest.mark.parametrize("name", ["cosine", "euclidean", "ssim"])
def test_pairs_scored_together_score_as_each_alone(name: str, astronaut: Image.Image) -> None:
    # A photo's turned searches are scored in one batch, each turn against its own candidates.
    method = get_method(name)
    photos = [astronaut, *(open_rgb(SAMPLES / n) for n in ("chelsea.png", "coffee.png", "rocket.jpg"))]
    prints = [method.fingerprint(p) for p in photos]
    mine = [np.rot90(prints[0], k) for k in range(4)]
    others = [prints[0], prints[1], prints[2], method.fingerprint(_reencoded(photos[3]))]
    alone = [method.compare(a, b) for a, b in zip(mine, others, strict=True)]
    assert method.compare_pairs(mine, others) == pytest.approx(alone, abs=1e-5)
    assert method.compare_many(mine[0], others) == pytest.approx([method.compare(mine[0], b) for b in others],
                                                                 abs=1e-5)


def test_openblas_spins_no_threads_of_its_own() -> None:
    # Its idle threads spin between dupwatch's small matrix products, taking a core from the
    # decoding workers; every dupwatch process (and the workers it starts) sets one thread.
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    code = "import dupwatch, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_flat_image_matches_nothing(astronaut: Image.Image) -> None:
    cosine = get_method("cosine")
    flat = Image.new("RGB", (64, 64), (90, 90, 90))
    assert cosine.compare(cosine.fingerprint(flat), cosine.fingerprint(astronaut)) == 0.0


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: euclidean, ssim, hash"):
        get_method("sift")


def test_shared_black_corners_do_not_make_photos_alike() -> None:
    # Two different photos rotated by 25°: the black corners they share are no evidence.
    cosine = get_method("cosine")
    a, b = (open_rgb(SAMPLES / n).rotate(25, expand=True) for n in ("astronaut.png", "coffee.png"))
    assert cosine.compare(cosine.fingerprint(a), cosine.fingerprint(b)) < cosine.default_threshold


def test_turned_copies_are_kept_alike_without_the_look_past_an_overlay(astronaut: Image.Image) -> None:
    # The turned searches keep only scores at TURNED_THRESHOLD, which a look past an overlay
    # (at most 1 - OCCLUSION_COST) cannot give: their scorer leaves it out, and keeps the same.
    assert TURNED_THRESHOLD > 1 - OCCLUSION_COST
    full, quick = Cosine(), Cosine(overlay=False)
    captioned = astronaut.copy()
    w, h = captioned.size
    ImageDraw.Draw(captioned).rectangle((0, h * 3 // 4, w // 3, h), fill=(255, 255, 255))
    base = full.fingerprint(astronaut)
    turned = np.rot90(base)
    others = [np.rot90(full.fingerprint(_reencoded(astronaut))), np.rot90(full.fingerprint(captioned)),
              *(np.rot90(full.fingerprint(open_rgb(SAMPLES / n))) for n in ("chelsea.png", "coffee.png"))]
    scores, quicker = full.compare_many(turned, others), quick.compare_many(turned, others)
    assert scores[0] == pytest.approx(quicker[0], abs=1e-6) and scores[0] >= TURNED_THRESHOLD
    assert scores[1] > quicker[1]  # the look past the caption counts for the confirming scorer
    kept = [(s >= TURNED_THRESHOLD, q >= TURNED_THRESHOLD) for s, q in zip(scores, quicker, strict=True)]
    assert kept == [(True, True), (False, False), (False, False), (False, False)]


def test_the_kept_small_grey_is_only_ever_the_same_images() -> None:
    """`small_gray` keeps its last result for the next method to ask: an image made where a
    freed one was (the same id) gets its own grey, not the freed one's."""
    for _ in range(20):
        first = Image.new("L", (64, 64), 10)
        assert np.asarray(small_gray(first, 32)).max() == 10
        assert small_gray(first, 32) is small_gray(first, 32)
        del first
        second = Image.new("L", (64, 64), 200)
        assert np.asarray(small_gray(second, 32)).min() == 200
        assert small_gray(second, 16).size == (16, 16)
