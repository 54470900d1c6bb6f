"""SSIM's numpy `compare_many` gives SSIM-PIL's own compare_ssim values, on real photographs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dupwatch.methods.ssim import Ssim
from tests.conftest import PHOTOS, open_rgb


def test_compare_many_matches_compare_ssim(photo_dir: Path) -> None:
    method = Ssim()
    images = [open_rgb(photo_dir / name) for name in PHOTOS]
    # A copy of the first, shrunk and brightened, so that high scores are checked too.
    images.append(images[0].resize((200, 200)).point(lambda v: min(255, int(v * 1.2))))
    prints = [method.fingerprint(image) for image in images]
    for query in (prints[0], prints[3], prints[-1]):
        many = method.compare_many(query, prints)
        assert many == pytest.approx([method.compare(query, other) for other in prints], abs=1e-9)
    assert method.compare_many(prints[0], [prints[0]]) == pytest.approx([1.0])
    assert method.compare_many(prints[0], [prints[-1]])[0] > 0.75
    assert method.compare_many(prints[0], []) == []
