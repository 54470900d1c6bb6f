"""Groups and the copy to keep: the copies of one photo are one group whatever the order they
land in, its keeper is the same best copy, and each copy is told against that keeper (real
photos, a real SQLite cache, the real pipeline)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from dupwatch import keeper
from dupwatch.config import CacheConfig, Config
from dupwatch.fingerprint import Plan, fingerprint_file
from dupwatch.pipeline import Duplicate, Pipeline
from dupwatch.record import Match, Photo
from dupwatch.store import open_store
from tests.conftest import SAMPLES, open_rgb, run
from tests.test_watch import SETTLE, Start, start  # noqa: F401  (a fixture)


def five_versions(folder: Path) -> dict[str, Path]:
    """The issue's example: a lossless original and four lesser copies of it."""
    folder.mkdir(parents=True, exist_ok=True)
    image = open_rgb(SAMPLES / "astronaut.png")
    w, h = image.size
    versions = {
        "png": folder / "original.png",
        "q40": folder / "export-q40.jpg",
        "half": folder / "half.jpg",
        "crop": folder / "crop.jpg",
        "webp": folder / "shared.webp",
    }
    image.save(versions["png"])
    image.save(versions["q40"], quality=40)
    image.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(versions["half"], quality=85)
    image.crop((w // 40, h // 40, w - w // 40, h - h // 40)).save(versions["crop"], quality=90)
    image.save(versions["webp"], quality=80)
    return versions


def _land(pipeline: Pipeline, paths: list[Path]) -> list[Match]:
    return [e.match for e in pipeline.ingest([str(p) for p in paths]) if isinstance(e, Duplicate)]


def _tagged(match: Match) -> str:
    """The file a notice marks as the copy (the XMP tag, the sidecar): never a keeper."""
    return match.match if match.better() else match.path


ORDERS = [order for n, order in enumerate(itertools.permutations(range(5))) if n % 11 == 0]


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "-".join(map(str, o)))
def test_five_versions_are_one_group_with_one_keeper_in_any_order(tmp_path: Path, order: tuple[int, ...]
                                                                  ) -> None:
    versions = list(five_versions(tmp_path / "photos").values())
    store = open_store(CacheConfig(path=tmp_path / "cache.db"))
    pipeline = Pipeline(Config(), store)
    try:
        told = _land(pipeline, [versions[i] for i in order])
        ids = [store.get(str(p)) for p in versions]
        groups = {store.group_of(k.id) for k in ids if k is not None}
        assert len(groups) == 1 and None not in groups  # found whole
        [group_id] = groups
        assert group_id is not None
        kept = pipeline.library.keeping(group_id)
        assert kept is not None and len(kept.members) == 5
        assert kept.members[0].path == str(versions[0])  # the lossless original, whatever the order
        assert kept.why == keeper.WHY["lossless"]  # it beat the same-size JPEG on being lossless
        assert len(told) == 4  # every copy told once
        for match in told:
            assert _tagged(match) != str(versions[0])  # the keeper is never marked a copy
            assert match.group == group_id
            if not match.better():
                assert match.match == match.keep  # one hop to the keeper, no chain
    finally:
        pipeline.close()
        store.close()


def test_a_better_version_arriving_last_is_told_as_one(tmp_path: Path, pipeline: Pipeline) -> None:
    v = five_versions(tmp_path / "photos")
    _land(pipeline, [v["q40"]])
    [told] = _land(pipeline, [v["png"]])
    assert told.better() and told.keep == str(v["png"]) and told.match == str(v["q40"])
    [later] = _land(pipeline, [v["half"]])
    assert later.match == str(v["png"]) and later.keep == str(v["png"])


@pytest.mark.parametrize("edit", ["pad-white", "pad-blur", "rot25"])
def test_a_copy_padded_or_on_a_canvas_is_not_a_bigger_photo(tmp_path: Path, pipeline: Pipeline, edit: str
                                                             ) -> None:
    """A copy padded to a square (or turned onto a larger canvas) has more pixels than its
    original, but not more photo: the keeper order counts the photo's own pixels, and the
    lossless original stays the keeper whichever lands first. Main kept the padded JPEG ("more
    pixels") and tagged the original as its copy."""
    from dupwatch.bench.variants import TRANSFORMS

    folder = tmp_path / "photos"
    folder.mkdir()
    original = folder / "original.png"
    image = open_rgb(SAMPLES / "chelsea.png")
    image.save(original)
    suffix, data = TRANSFORMS[edit](image)
    copy = folder / f"copy{suffix}"
    copy.write_bytes(data)
    with Image.open(copy) as im:
        assert im.width * im.height > image.width * image.height  # more pixels than the photo
    [told] = _land(pipeline, [copy, original])  # the copy first: the original is a better version
    assert told.better() and told.keep == str(original), told
    known = [pipeline.store.get(str(p)) for p in (original, copy)]
    assert all(k is not None for k in known)
    group = pipeline.library.keeping(pipeline.store.group_of(known[0].id))  # type: ignore[union-attr,arg-type]
    assert group is not None and group.members[0].path == str(original)
    own = {m.path: m.pixels for m in group.members}
    assert abs(own[str(copy)] / own[str(original)] - 1) < 0.05, own  # the same photo, the same pixels


def test_a_reference_file_is_never_told_and_always_kept(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    v = five_versions(tmp_path / "photos")
    archive.mkdir()
    kept = Path(shutil.copy(v["half"], archive / "half-in-archive.jpg"))
    store = open_store(CacheConfig(path=tmp_path / "cache.db"))
    pipeline = Pipeline(Config(reference=(archive,)), store)
    try:
        assert _land(pipeline, [v["png"]]) == []
        # Landing in the reference folder: a duplicate, recorded, never told.
        assert _land(pipeline, [kept]) == []
        known = store.get(str(kept))
        assert known is not None
        group_id = store.group_of(known.id)
        assert group_id is not None
        keeping = pipeline.library.keeping(group_id)
        assert keeping is not None and keeping.members[0].path == str(kept)
        assert keeping.why == keeper.WHY["reference"]  # kept over the bigger, lossless original
        # A copy outside it is told against the reference file.
        [told] = _land(pipeline, [v["q40"]])
        assert told.keep == str(kept) and told.path == str(v["q40"])
    finally:
        pipeline.close()
        store.close()


def test_a_forgotten_keeper_hands_the_group_on(tmp_path: Path, pipeline: Pipeline) -> None:
    v = five_versions(tmp_path / "photos")
    _land(pipeline, [v["png"], v["q40"], v["half"]])
    png = pipeline.store.get(str(v["png"]))
    assert png is not None
    group_id = pipeline.store.group_of(png.id)
    assert group_id is not None
    assert pipeline.library.forget(str(v["png"]))
    kept = pipeline.library.keeping(group_id)
    assert kept is not None and [m.path for m in kept.members] == [str(v["q40"]), str(v["half"])]
    assert pipeline.library.forget(str(v["half"]))
    assert pipeline.library.keeping(group_id) is None  # a group of one is no group to show
    assert list(pipeline.library.keepings()) == []
    assert pipeline.library.forget(str(v["q40"]))
    assert pipeline.store.group(group_id) is None  # and a group of none is gone


def test_the_users_choice_of_keeper_holds_as_the_group_grows(tmp_path: Path, pipeline: Pipeline) -> None:
    v = five_versions(tmp_path / "photos")
    _land(pipeline, [v["png"], v["q40"]])
    q40 = pipeline.store.get(str(v["q40"]))
    assert q40 is not None
    assert pipeline.library.choose(q40.id) == (str(v["png"]), str(v["q40"]))
    [told] = _land(pipeline, [v["half"]])
    assert told.keep == str(v["q40"])
    group_id = pipeline.store.group_of(q40.id)
    assert group_id is not None
    kept = pipeline.library.keeping(group_id)
    assert kept is not None and kept.why == keeper.WHY["chosen"]


def test_a_header_says_format_and_metadata(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[271], exif[272] = "Canon", "EOS R5"
    exif.get_ifd(0x8769)[36867] = "2024:05:01 10:00:00"
    photo = tmp_path / "camera.jpg"
    open_rgb(SAMPLES / "coffee.png").save(photo, exif=exif)
    assert keeper.read_header(str(photo)) == ("JPEG", keeper.DATE | keeper.CAMERA_MODEL,
                                              "Canon EOS R5|2024:05:01 10:00:00|")
    lossless = tmp_path / "lossless.webp"
    open_rgb(SAMPLES / "coffee.png").save(lossless, lossless=True)
    assert keeper.read_header(str(lossless))[0] == "WEBP-LOSSLESS"
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    assert keeper.read_header(str(fifo)) == keeper.UNREAD  # never waits on a writer
    assert keeper.read_header("nas:/photos/a.jpg") == keeper.UNREAD  # another host's file
    # The worker that decodes a file reads its header from the bytes it has: the one ingesting
    # thread need not open every file again.
    plan = Plan(("chash", "cosine"))
    for path in (photo, lossless):
        fingerprinted = fingerprint_file(str(path), plan)
        assert isinstance(fingerprinted, Photo)
        assert fingerprinted.header == keeper.read_header(str(path))


def test_forget_then_rescan_tells_nothing_old_again(tmp_path: Path, cache: Path) -> None:
    v = five_versions(tmp_path / "photos")
    first = run("scan", tmp_path / "photos", "--cache", cache, "--json")
    assert len(first.events("duplicate")) == 4
    assert run("forget", v["half"], v["crop"], "--cache", cache).code == 0
    again = run("scan", tmp_path / "photos", "--cache", cache, "--json")
    assert again.events("duplicate") == []
    assert again.events("summary")[0]["indexed"] == 2  # read again, and known as told


def test_resolve_then_restore_gives_every_copy_back(tmp_path: Path, cache: Path) -> None:
    import hashlib

    v = five_versions(tmp_path / "photos")
    quarantine = tmp_path / "quarantine"
    config = tmp_path / "config.yaml"
    config.write_text(f"actions:\n  enabled: true\n  folder: {quarantine}\n")
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in v.values()}
    run("scan", tmp_path / "photos", "--cache", cache)
    assert run("resolve", "1", "--dry-run", "--cache", cache, "--config", config).code == 0
    assert all(p.exists() for p in v.values())  # a dry run moves nothing
    assert run("resolve", "1", "--cache", cache, "--config", config).code == 0
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["original.png"]  # the keeper stays
    assert run("restore", "--cache", cache, "--config", config).code == 0
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in v.values()} == digest
    # Found again, the copies rejoin their group and nothing they were told for is told again.
    again = run("scan", tmp_path / "photos", "--json", "--cache", cache)
    assert [e for e in map(json.loads, again.out.splitlines()) if e["event"] == "duplicate"] == []
    [listed] = map(json.loads, run("groups", "--json", "--cache", cache).out.splitlines())
    assert listed["group"] == 1 and len(listed["files"]) == 5


def test_resolve_is_refused_unless_actions_are_enabled(tmp_path: Path, cache: Path) -> None:
    five_versions(tmp_path / "photos")
    run("scan", tmp_path / "photos", "--cache", cache)
    refused = run("resolve", "1", "--cache", cache)
    assert refused.code != 0 and "actions are off" in refused.err


def test_a_better_version_is_never_tagged_its_old_keeper_is(tmp_path: Path) -> None:
    import time

    from dupwatch.record import Notice
    from dupwatch.sinks.xmp import XmpTag, sidecar_of

    v = five_versions(tmp_path / "photos")
    better = Match(str(v["png"]), str(v["q40"]), "near", "cosine", 1.0, 0, group=1, keep=str(v["png"]))
    XmpTag().send(Notice(1, time.time(), better))
    assert not sidecar_of(str(v["png"])).exists()  # the copy to keep carries no tag
    tag = sidecar_of(str(v["q40"])).read_text()
    assert "dupwatch/duplicate" in tag and "original.png" in tag


def test_a_better_version_landing_on_a_running_watcher_moves_the_keeper_and_the_tag(
        tmp_path: Path, cache: Path, start: Start) -> None:  # noqa: F811  (the fixture)
    from dupwatch.sinks.xmp import sidecar_of

    staged = five_versions(tmp_path / "staged")
    photos = tmp_path / "photos"
    photos.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"watch:\n  settle_seconds: {SETTLE}\nnotices:\n  xmp:\n    enabled: true\n")
    shutil.copy(staged["half"], photos / "half.jpg")
    daemon = start("--config", config, "--cache", cache, photos)
    daemon.wait_log("caught up: 1 file")

    # A full-size export lands after the half-size copy: a better version, which becomes the keeper.
    shutil.copy(staged["q40"], photos / "export-q40.jpg")
    daemon.wait_log(re.escape(f"{photos / 'export-q40.jpg'} a better version of {photos / 'half.jpg'}"))
    # Then the lossless original: better again; the tag goes to the keeper it replaces.
    shutil.copy(staged["png"], photos / "original.png")
    line = daemon.wait_log(re.escape(f"{photos / 'original.png'} a better version of"))
    assert "keep the new one" in line
    # And a lesser copy after them is told against the keeper, one hop.
    shutil.copy(staged["webp"], photos / "shared.webp")
    daemon.wait_duplicate(photos / "shared.webp", photos / "original.png")
    assert daemon.stop() == 0

    assert not sidecar_of(str(photos / "original.png")).exists()  # the keeper is never tagged
    # The keeper it replaced carries the tag now, naming the new keeper.
    for copy in ("export-q40.jpg", "half.jpg", "shared.webp"):
        assert "dupwatch/duplicate" in sidecar_of(str(photos / copy)).read_text()
    replaced = sidecar_of(str(photos / "export-q40.jpg")).read_text()
    assert f'DuplicateOf="{photos / "original.png"}"' in replaced
    listed = json.loads(run("groups", "--json", "--cache", cache).out)
    assert listed["keep"] == str(photos / "original.png") and len(listed["files"]) == 4


@pytest.mark.parametrize("step", [2, 3])
def test_a_resolve_killed_mid_move_is_finished_or_undone_when_the_watcher_starts(
        tmp_path: Path, cache: Path, start: Start, step: int) -> None:  # noqa: F811  (the fixture)
    import hashlib
    import signal
    import subprocess
    import sys

    from dupwatch.quarantine import Quarantine

    v = five_versions(tmp_path / "photos")
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in v.values()}
    folder = tmp_path / "quarantine"
    config = tmp_path / "config.yaml"
    config.write_text(f"watch:\n  settle_seconds: {SETTLE}\nactions:\n  enabled: true\n  folder: {folder}\n")
    assert run("scan", tmp_path / "photos", "--cache", cache).code == 0
    fault = {**os.environ, "DUPWATCH_FAULT": f"quarantine:{step}"}
    killed = subprocess.run([sys.executable, "-m", "dupwatch", "resolve", "1", "--config", str(config),
                             "--cache", str(cache)], env=fault, capture_output=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL
    journal = Quarantine(folder, cache.parent / "quarantine.jsonl")
    assert journal._state().begun  # a move begun and never confirmed

    daemon = start("--config", config, "--cache", cache, tmp_path / "photos")
    daemon.wait_log("caught up:")
    assert daemon.stop() == 0
    assert journal._state().begun == {}  # finished or undone before the catch-up
    moved = {m.src for m in journal.quarantined()}
    for path in v.values():  # each photo in one place, the journal saying which
        home, away = path.exists(), journal.target(path).exists()
        assert home != away and away == (path in moved), path
    assert run("restore", "--config", config, "--cache", cache).code == 0
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in v.values()} == digest


def test_keeping_another_copy_moves_the_xmp_tag_to_the_keeper_it_replaces(tmp_path: Path, cache: Path
                                                                           ) -> None:
    from dupwatch.sinks.xmp import sidecar_of

    v = five_versions(tmp_path / "photos")
    config = tmp_path / "config.yaml"
    config.write_text("notices:\n  xmp:\n    enabled: true\n")
    assert run("scan", tmp_path / "photos", "--config", config, "--cache", cache).code == 0
    assert not sidecar_of(str(v["png"])).exists() and sidecar_of(str(v["half"])).exists()
    chosen = run("keep", v["half"], "--config", config, "--cache", cache)
    assert chosen.code == 0 and f"keep {v['half']} instead of {v['png']}" in chosen.out
    # The copy to keep carries no tag (the sidecar dupwatch made for it is gone with it)...
    assert not sidecar_of(str(v["half"])).exists()
    # ...and the keeper it replaced is tagged a duplicate of it.
    tag = sidecar_of(str(v["png"])).read_text()
    assert "dupwatch/duplicate" in tag and f'DuplicateOf="{v["half"]}"' in tag


@pytest.mark.parametrize(("better", "worse", "why"), [
    ({"width": 4000, "height": 3000}, {"width": 2000, "height": 1500}, "more pixels"),
    ({"format": "PNG"}, {"format": "JPEG"}, "lossless"),
    ({"format": "JPEG"}, {"format": "WEBP"}, "the original's format"),
    ({"size": 900_000}, {"size": 300_000}, "larger file"),
    ({"meta": keeper.DATE | keeper.GPS}, {"meta": keeper.DATE}, "richer metadata"),
    ({"mtime_ns": 1}, {"mtime_ns": 2}, "oldest"),
    # A padded copy: more pixels in the file, the same photo within 2 %: the next criterion decides.
    ({"format": "PNG", "pixels": 12_000_000}, {"width": 4000, "height": 4000, "pixels": 12_100_000},
     "lossless"),
    ({}, {}, "first by name"),
])
def test_the_keeper_and_why_it_won(better: dict[str, int | str], worse: dict[str, int | str], why: str
                                   ) -> None:
    """Two copies differing on one criterion: the better one is kept, for that reason, whichever
    comes first."""
    from dupwatch.store.base import Member

    base = {"width": 4000, "height": 3000, "size": 500_000, "mtime_ns": 5, "format": "JPEG", "meta": 0}
    a = Member(1, "/p/a.jpg", **{**base, **better})  # type: ignore[arg-type]
    b = Member(2, "/p/b.jpg", **{**base, **worse})  # type: ignore[arg-type]
    for members in ([a, b], [b, a]):
        ranked = keeper.ranked(members)
        assert ranked[0] == a and keeper.why(ranked) == why
