"""The Library keeps the catalog and every search in step: a file forgotten, moved or indexed anew
is never offered as a candidate under what it was (real photos, a real SQLite cache)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from dupwatch.pipeline import Duplicate, Pipeline
from tests.conftest import SAMPLES, open_rgb


def _copy_of(source: Path, target: Path) -> Path:
    open_rgb(source).resize((400, 300)).save(target, quality=80)
    return target


def _matches(pipeline: Pipeline, path: Path) -> list[str]:
    return [e.match.match for e in pipeline.ingest([str(path)]) if isinstance(e, Duplicate)]


def test_a_forgotten_file_is_no_candidate(tmp_path: Path, pipeline: Pipeline) -> None:
    original = Path(shutil.copy(SAMPLES / "chelsea.png", tmp_path / "chelsea.png"))
    list(pipeline.ingest([str(original)]))
    assert len(pipeline.hamming.index) == 1
    assert pipeline.library.forget(str(original))
    assert len(pipeline.hamming.index) == 0  # out of the search, not only out of the catalog
    # Still on disk, so only the searches (not a check of the disk) can keep it out.
    assert _matches(pipeline, _copy_of(original, tmp_path / "copy.jpg")) == []
    assert not pipeline.library.forget(str(original))  # known no more


def test_a_moved_file_is_found_where_it_went(tmp_path: Path, pipeline: Pipeline) -> None:
    old = Path(shutil.copy(SAMPLES / "coffee.png", tmp_path / "coffee.png"))
    list(pipeline.ingest([str(old)]))
    new = tmp_path / "sorted" / "coffee.png"
    new.parent.mkdir()
    os.rename(old, new)
    pipeline.library.move(str(old), str(new))
    assert _matches(pipeline, _copy_of(new, tmp_path / "copy.jpg")) == [str(new)]


def test_a_move_nobody_saw_keeps_the_file_and_its_pairs(tmp_path: Path, pipeline: Pipeline) -> None:
    original = Path(shutil.copy(SAMPLES / "astronaut.png", tmp_path / "astronaut.png"))
    copy = _copy_of(original, tmp_path / "copy.jpg")
    list(pipeline.ingest([str(original)]))
    assert _matches(pipeline, copy) == [str(original)]
    moved = tmp_path / "elsewhere.jpg"
    os.rename(copy, moved)
    assert pipeline.library.claim(str(moved), os.stat(moved))
    # The same file at its new path: unchanged, so not read again and its pair not told again.
    assert _matches(pipeline, moved) == []
    assert pipeline.library.known(str(moved)) is not None
    assert pipeline.library.known(str(copy)) is None


def test_a_file_indexed_anew_is_no_candidate_as_it_was(tmp_path: Path, pipeline: Pipeline) -> None:
    path = tmp_path / "photo.png"
    shutil.copy(SAMPLES / "rocket.jpg", path)
    Image.open(path).save(path, "PNG")
    list(pipeline.ingest([str(path)]))
    shutil.copy(SAMPLES / "chelsea.png", path)  # another photo under the same name
    os.utime(path, ns=(1, 1))
    list(pipeline.ingest([str(path)]))
    assert _matches(pipeline, _copy_of(SAMPLES / "rocket.jpg", tmp_path / "rocket-copy.jpg")) == []
    assert _matches(pipeline, _copy_of(SAMPLES / "chelsea.png", tmp_path / "chelsea-copy.jpg")) == [str(path)]


def test_fingerprints_made_on_demand_are_stored_and_the_photo_is_left_as_it_was(tmp_path: Path) -> None:
    """The matching stages ask `OnDemand` for a fingerprint no worker made (geometry's features in
    the default mode): an indexed file's is stored at once; the new photo's is kept until the
    photo is indexed, and the photo itself is not changed (main wrote it into the frozen
    photo's own dict)."""
    pytest.importorskip("cv2", reason="the geometry extra is installed by `make test`")
    from dupwatch.config import CacheConfig
    from dupwatch.fingerprint import Plan, fingerprint_now
    from dupwatch.methods.geometry import Geometry
    from dupwatch.ondemand import OnDemand
    from dupwatch.store import open_store

    shutil.copy(SAMPLES / "chelsea.png", tmp_path / "old.png")
    open_rgb(SAMPLES / "chelsea.png").resize((300, 200)).save(tmp_path / "new.jpg", quality=80)
    store = open_store(CacheConfig(path=tmp_path / "cache.db"))
    try:
        method, plain = Geometry(), Plan(("chash", "cosine"))
        old_id = store.put(fingerprint_now(str(tmp_path / "old.png"), plain), plain.signature)
        assert store.fingerprint(old_id, method.key) is None
        on_demand = OnDemand(store)
        made = on_demand.stored(old_id, str(tmp_path / "old.png"), method)
        assert made is not None and store.fingerprint(old_id, method.key) == made

        new = fingerprint_now(str(tmp_path / "new.jpg"), plain)
        before = dict(new.fingerprints)
        features = on_demand.of(new, method)
        assert features is not None and on_demand.of(new, method) == features  # made once
        assert new.fingerprints == before  # the photo is left as it was
        indexed = on_demand.with_made(new)
        assert indexed.fingerprints == {**before, method.key: features}
        assert on_demand.with_made(new) is new  # handed over once
    finally:
        store.close()


def test_a_file_indexed_before_the_cosine_was_configured_is_scored_by_it(tmp_path: Path) -> None:
    """A cache built with another confirm method, then the default one: the cosine grid of a
    candidate indexed before is made from its file on demand (it crashed: the cosine built by
    name took the options for its overlay switch and had no `options` to fingerprint with)."""
    from dupwatch.config import CacheConfig, Config
    from dupwatch.store import open_store

    original = Path(shutil.copy(SAMPLES / "chelsea.png", tmp_path / "chelsea.png"))
    store = open_store(CacheConfig(path=tmp_path / "cache.db"))
    try:
        before = Pipeline(Config.model_validate({"confirm": {"method": "euclidean"},
                                                     "candidates": {"dihedral": False}}), store)
        list(before.ingest([str(original)]))
        before.close()
        pipeline = Pipeline(Config(), store)
        try:
            assert _matches(pipeline, _copy_of(original, tmp_path / "copy.jpg")) == [str(original)]
        finally:
            pipeline.close()
    finally:
        store.close()
