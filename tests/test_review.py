"""Decisions without a browser: `dupwatch ignore` and `seen`, the XMP tag taken off, the alert's
link (ntfy's click action through a real HTTP receiver), the page served by `dupwatch watch`,
the review config's errors. The page itself in a browser: test_review_browser.py."""

from __future__ import annotations

import http.cookiejar
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from dupwatch.config import parse
from dupwatch.errors import ConfigError, ExitCode
from dupwatch.record import Match
from dupwatch.store.base import ReviewFilter
from dupwatch.store.sqlite import SqliteStore
from tests.conftest import run
from tests.receiver import Receiver
from tests.test_watch import SETTLE, Start, start  # noqa: F401  (a fixture)
from tests.test_xmp import EXISTING, exiftool


def duplicates_of(original: Path, *args: str | Path) -> list[str]:
    found = run("scan", *args, "--json").events("duplicate")
    return [e["path"] for e in found if e["match"] == str(original)]


def gone_and_back(path: Path, target: Path, folder: Path, cache: Path) -> Path:
    """`path` deleted and forgotten by a scan, then its bytes back at `target`: a move the watcher
    never saw, so the cache meets the content again as a new file."""
    content = path.read_bytes()
    path.unlink()
    run("scan", folder, "--cache", cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return target


def test_ignore_holds_by_content_through_a_move_until_undone(photos: Path, cache: Path) -> None:
    original, copy = photos / "coffee.png", photos / "zz coffee copy.png"
    shutil.copy(original, copy)
    assert duplicates_of(original, photos, "--cache", cache) == [str(copy)]
    result = run("ignore", copy, original, "--cache", cache)
    assert result.code == ExitCode.OK and "not a duplicate; never reported again" in result.out
    assert "already marked" in run("ignore", original, copy, "--cache", cache).out  # either order

    # Moved elsewhere under another name.
    moved = gone_and_back(copy, photos / "2024" / "IMG_0001.png", photos, cache)
    content = moved.read_bytes()
    assert duplicates_of(original, photos, "--cache", cache) == []

    undone = run("ignore", "--undo", moved, original, "--cache", cache)
    assert "may be reported as duplicates again" in undone.out
    moved.unlink()
    run("scan", photos, "--cache", cache)
    moved.write_bytes(content)
    assert duplicates_of(original, photos, "--cache", cache) == [str(moved)]


def test_seen_and_unreviewed(photos: Path, cache: Path) -> None:
    shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
    shutil.copy(photos / "rocket.jpg", photos / "zz rocket copy.jpg")
    run("scan", photos, "--cache", cache)
    listed = run("notices", "--unreviewed", "--json", "--cache", cache).json()
    assert sorted(n["path"].rsplit("/", 1)[1] for n in listed) == ["zz coffee copy.png", "zz rocket copy.jpg"]
    first = listed[0]["id"]
    assert run("seen", str(first), "--cache", cache).code == ExitCode.OK
    left = run("notices", "--unreviewed", "--json", "--cache", cache).json()
    assert len(left) == 1 and left[0]["id"] != first
    assert len(run("notices", "--json", "--cache", cache).json()) == 2  # all of them, still
    assert run("seen", "--undo", str(first), "--cache", cache).code == ExitCode.OK
    assert len(run("notices", "--unreviewed", "--json", "--cache", cache).json()) == 2
    missing = run("seen", "999", "--cache", cache)
    assert missing.code == ExitCode.ERROR and "no notice 999" in missing.err


def test_not_a_duplicate_takes_off_dupwatchs_xmp_tag_and_nothing_else_and_undo_puts_it_back(
        photos: Path, cache: Path, tmp_path: Path) -> None:
    copy = photos / "zz coffee copy.png"
    shutil.copy(photos / "coffee.png", copy)
    sidecar = photos / "zz coffee copy.png.xmp"
    sidecar.write_text(EXISTING, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"notices": {"xmp": {"enabled": True}}}))
    run("scan", photos, "--config", config, "--cache", cache)
    assert exiftool(sidecar)["XMP-dupwatch:DuplicateOf"] == str(photos / "coffee.png")
    # A sidecar tagged for another pair keeps its tag: that pair still stands.
    other = photos / "rocket.jpg.xmp"
    shutil.copy(sidecar, other)

    run("ignore", copy, photos / "coffee.png", "--config", config, "--cache", cache)
    tags = exiftool(sidecar)
    assert not [key for key in tags if key.startswith("XMP-dupwatch:")]
    for key, kept in (("digiKam:TagsList", "Food/breakfast"), ("lr:HierarchicalSubject", "Food|breakfast"),
                      ("dc:Subject", "breakfast")):
        assert tags[f"XMP-{key}"] in (kept, [kept])  # exiftool gives a one-item array as either
    assert tags["XMP-xmp:Rating"] == 4 and tags["XMP-dc:Description"] == "Morning coffee"
    assert [h["Operation"] for h in tags["XMP-darktable:History"]] == ["exposure", "crop"]
    assert exiftool(other)["XMP-dupwatch:DuplicateOf"] == str(photos / "coffee.png")
    # Undone from the command line, the pair is a duplicate again and its tag goes back on.
    run("ignore", "--undo", copy, photos / "coffee.png", "--config", config, "--cache", cache)
    tags = exiftool(sidecar)
    assert tags["XMP-dupwatch:DuplicateOf"] == str(photos / "coffee.png")
    assert tags["XMP-xmp:Rating"] == 4 and tags["XMP-dc:Description"] == "Morning coffee"


def test_alerts_link_to_the_pair_and_ntfy_gets_a_click_action(photos: Path, cache: Path,
                                                               tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "notices": {"apprise": {"urls": [f"ntfy://127.0.0.1:{receiver.port}/photos"]}},
            "review": {"public_url": "https://nas.example.net/dupwatch/"}}))
        shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
        run("scan", photos, "--config", config, "--cache", cache)
        [body] = receiver.wait(1)
    finally:
        receiver.stop()
    notice = SqliteStore(cache).notices(0, 1)[0]
    link = f"https://nas.example.net/dupwatch/pair/{notice.id}"
    assert body["message"].endswith(f"Review: {link}")
    assert receiver.headers[0]["X-Click"] == link


def test_watch_serves_the_page_when_the_config_enables_it(start: Start, photos: Path, cache: Path,  # noqa: F811
                                                          tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"watch": {"settle_seconds": SETTLE},
                                      "review": {"enabled": True, "bind": "127.0.0.1:0"}}))
    daemon = start("--config", config, "--cache", cache, photos)
    url = daemon.wait_log(r"review page on http://").rsplit(" ", 1)[1]
    daemon.wait_log("caught up:")
    shutil.copy(photos / "coffee.png", photos / "coffee copy.png")
    daemon.wait_duplicate(photos / "coffee copy.png", photos / "coffee.png")
    with urllib.request.urlopen(url, timeout=10) as page:  # noqa: S310  (http://127.0.0.1)
        html = page.read().decode()
    assert "coffee copy.png" in html and "1 notice" in html
    assert daemon.stop() == 0


def test_review_config_errors_name_the_key() -> None:
    for section, key in (({"bind": "localhost"}, "review.bind"),
                         ({"password_hash": "hunter2"}, "review.password_hash"),
                         ({"public_url": "javascript:alert(1)"}, "review.public_url"),
                         ({"photo_manager_url": "https://photos/?q={nmae}"}, "review.photo_manager_url")):
        with pytest.raises(ConfigError) as caught:
            parse({"review": section})
        assert caught.value.key == key
        assert "hunter2" not in str(caught.value)  # the hash is never repeated


def test_a_geometric_match_keeps_its_geometry_in_the_notice(cache: Path, photos: Path) -> None:
    store = SqliteStore(cache)
    run("scan", photos, "--cache", cache)
    ids = [store.get(str(photos / name)).id for name in ("coffee.png", "chelsea.png")]  # type: ignore[union-attr]
    geometry = {"inliers": 41, "matches": 60, "rotation": 25.0, "scale": 1.6, "mirrored": False}
    match = Match(str(photos / "coffee.png"), str(photos / "chelsea.png"), "near", "geometry", 0.7, 20,
                  geometry=geometry)
    assert store.record_pair(ids[0], ids[1], match)
    store.commit()
    [item], total = store.review(ReviewFilter(), 0, 10)
    assert total == 1 and item.notice.match.geometry == geometry and item.hashes is not None
    assert store.notices(0, 10)[0].to_json()["geometry"] == geometry
    store.close()


def test_thumbnails_of_contents_gone_from_the_index_and_the_least_recently_shown_are_pruned(
        photos: Path, cache: Path, tmp_path: Path) -> None:
    import os

    from PIL import Image

    from dupwatch.review.thumbs import Thumbnails, prune

    resaved = photos / "zz coffee resaved.jpg"
    Image.open(photos / "coffee.png").convert("RGB").save(resaved, quality=90)
    run("scan", photos, "--cache", cache)
    root = tmp_path / "thumbnails"
    thumbnails = Thumbnails(root)
    store = SqliteStore(cache)
    views = {Path(f.path).name: f for f in map(store.file_view, range(1, store.count() + 1)) if f}
    store.close()
    made = {name: thumbnails.get(file, 320) for name, file in views.items()}
    assert len(made) == 9 and all(path is not None and path.exists() for path in made.values())
    stray = root / "ab" / ".abcd-320.jpg.1.2.tmp"  # half-written by a killed process, long ago
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"half")
    os.utime(stray, (0, 0))
    foreign = root / "ab" / "notes.txt"
    foreign.write_text("not a thumbnail")

    resaved.unlink()
    run("scan", photos, "--cache", cache)  # forgets it
    store = SqliteStore(cache)
    indexed = store.content_hashes()
    store.close()
    done = prune(root, indexed, 10 * 2**20)
    gone = made["zz coffee resaved.jpg"]
    assert done.removed == 2 and gone is not None and not gone.exists() and not stray.exists()
    assert foreign.exists()
    kept = {name: path for name, path in made.items() if name != "zz coffee resaved.jpg"}
    assert all(path is not None and path.exists() for path in kept.values())

    # Over the limit: the least recently shown go first; showing one again makes it recent.
    for age, path in enumerate(kept.values()):
        assert path is not None
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    oldest = next(iter(kept))
    thumbnails.get(views[oldest], 320)  # shown now
    sizes = sorted(p.stat().st_size for p in kept.values() if p is not None)
    done = prune(root, indexed, sum(sizes) - 1)
    assert done.removed >= 1 and done.kept <= sum(sizes) - 1
    survivors = {name for name, path in kept.items() if path is not None and path.exists()}
    assert oldest in survivors and list(kept)[1] not in survivors


def test_the_review_page_prunes_its_thumbnails_when_it_starts(photos: Path, cache: Path,
                                                               tmp_path: Path) -> None:
    from tests.review_server import ReviewProcess

    run("scan", photos, "--cache", cache)
    root = tmp_path / "thumbnails"
    orphan = root / "00" / f"{'00' * 32}-320.jpg"  # a content no file in the index holds
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"\xff\xd8 not really")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"review": {"thumbnails": str(root)}}))
    server = ReviewProcess(tmp_path, "--cache", cache, "--config", config, "-v")
    try:
        for _ in range(100):
            if not orphan.exists():
                break
            time.sleep(0.05)
        assert not orphan.exists()
    finally:
        server.kill()
    assert "thumbnails: removed 1" in server.stderr.read_text()


def test_the_page_says_how_a_copy_was_turned_on_its_canvas(photos: Path, cache: Path, tmp_path: Path) -> None:
    from PIL import Image

    from tests.review_server import ReviewProcess

    turned = photos / "zz coffee turned.jpg"
    Image.open(photos / "coffee.png").convert("RGB").rotate(20, expand=True).save(turned, quality=80)
    run("scan", photos, "--cache", cache)
    server = ReviewProcess(tmp_path, "--cache", cache)
    try:
        for page in ("", "pair/1"):
            with urllib.request.urlopen(server.url + page, timeout=10) as response:  # noqa: S310
                assert "turned 20° counter-clockwise on a canvas" in response.read().decode()
    finally:
        server.kill()


def three_versions(folder: Path) -> dict[str, Path]:
    """One photo three times: a lossless PNG (the keeper), a JPEG at quality 40, half its size."""
    from PIL import Image

    from tests.conftest import SAMPLES, open_rgb

    folder.mkdir(parents=True, exist_ok=True)
    image = open_rgb(SAMPLES / "astronaut.png")
    versions = {"png": folder / "original.png", "q40": folder / "export-q40.jpg", "half": folder / "half.jpg"}
    image.save(versions["png"])
    image.save(versions["q40"], quality=40)
    image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS).save(versions["half"],
                                                                                      quality=85)
    return versions


class Client:
    """One browser session against a real `dupwatch review`: its cookie, and the CSRF token of
    the last page it read."""

    def __init__(self, url: str) -> None:
        self.url = url
        cookies = urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        self.opener = urllib.request.build_opener(cookies)
        self.csrf = ""

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=30) as response:
            html: str = response.read().decode()
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        self.csrf = found[1] if found else self.csrf
        return html

    def post(self, path: str, form: dict[str, str | int], csrf: bool = True) -> tuple[int, str]:
        data = urlencode({**form, **({"csrf": self.csrf} if csrf else {})}).encode()
        try:
            request = urllib.request.Request(self.url + path, data=data)  # noqa: S310  (http://127.0.0.1)
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def test_the_group_page_keeps_another_copy_instead_as_the_cache_remembers(cache: Path, tmp_path: Path
                                                                          ) -> None:
    from tests.review_server import ReviewProcess

    versions = three_versions(tmp_path / "group")
    run("scan", tmp_path / "group", "--cache", cache)
    [group] = run("groups", "--json", "--cache", cache).json()
    assert group["keep"] == str(versions["png"]) and len(group["files"]) == 3
    store = SqliteStore(cache)
    half = store.get(str(versions["half"]))
    store.close()
    assert half is not None
    server = ReviewProcess(tmp_path, "--cache", cache)
    try:
        client = Client(server.url)
        listed = client.get("groups")
        assert f"group {group['group']} · 3 files" in listed and 'href="/groups"' in listed
        page = client.get(f"group/{group['group']}")
        assert page.count('<figure class="file">') == 3 and page.count("keep this one instead") == 2
        assert "move the copies" not in page  # actions are off

        # No CSRF token: refused, nothing changed.
        code, _ = client.post(f"group/{group['group']}/keep", {"file": half.id}, csrf=False)
        assert code == 400
        assert run("groups", "--json", "--cache", cache).json()[0]["keep"] == str(versions["png"])
        # A file of no such group: refused.
        assert client.post(f"group/{group['group']}/keep", {"file": 9999})[0] == 400

        code, page = client.post(f"group/{group['group']}/keep", {"file": half.id})
        assert code == 200 and "chosen by you" in page
        [now] = run("groups", "--json", "--cache", cache).json()
        assert now["keep"] == str(versions["half"]) and now["why"] == "chosen by you"
        # The notices link to their group.
        assert f'href="/group/{group["group"]}"' in client.get("?status=all")
        assert f'href="/group/{group["group"]}"' in client.get("pair/1")
    finally:
        server.kill()


def test_moving_a_groups_copies_is_refused_on_the_page_unless_actions_are_enabled(cache: Path, tmp_path: Path
                                                                                    ) -> None:
    from tests.review_server import ReviewProcess

    versions = three_versions(tmp_path / "group")
    run("scan", tmp_path / "group", "--cache", cache)
    server = ReviewProcess(tmp_path, "--cache", cache)
    try:
        client = Client(server.url)
        client.get("group/1")
        assert client.post("group/1/resolve", {}, csrf=False)[0] == 400
        code, page = client.post("group/1/resolve", {})  # a forged form, with the token
        assert code == 403 and "actions are off" in page
        with pytest.raises(urllib.error.HTTPError) as refused:  # no preview of a move either
            client.get("group/1/resolve")
        assert refused.value.code == 403
    finally:
        server.kill()
    assert all(path.exists() for path in versions.values())
    assert len(run("groups", "--json", "--cache", cache).json()[0]["files"]) == 3


def test_the_group_page_moves_the_copies_when_actions_are_enabled(cache: Path, tmp_path: Path) -> None:
    from tests.review_server import ReviewProcess

    versions = three_versions(tmp_path / "group")
    quarantine = tmp_path / "quarantine"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"actions": {"enabled": True, "folder": str(quarantine)}}))
    run("scan", tmp_path / "group", "--cache", cache, "--config", config)
    server = ReviewProcess(tmp_path, "--cache", cache, "--config", config)
    try:
        client = Client(server.url)
        assert "move the copies to the quarantine…" in client.get("group/1")
        # The button shows every move first (the page's dry run); nothing moves.
        preview = client.get("group/1/resolve")
        assert "Nothing has moved yet. 2 would move to the quarantine" in preview
        assert preview.count("<li class=\"moved\">would move") == 2 and str(versions["half"]) in preview
        assert all(path.exists() for path in versions.values())
        assert len(run("groups", "--json", "--cache", cache).json()[0]["files"]) == 3
        code, page = client.post("group/1/resolve", {})  # "move them", with the preview's token
        assert code == 200 and "2 moved to the quarantine" in page
    finally:
        server.kill()
    assert versions["png"].exists() and not versions["q40"].exists() and not versions["half"].exists()
    assert (quarantine / str(versions["half"]).lstrip("/")).exists()
    assert run("groups", "--json", "--cache", cache).json() == []  # the copies are forgotten


def test_a_refused_move_shows_on_the_page_in_one_line_and_nothing_moves(cache: Path, tmp_path: Path) -> None:
    import os

    from tests.review_server import ReviewProcess

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("/dev/shm is not a separate filesystem here")
    versions = three_versions(tmp_path / "group")
    folder = shm / f"dupwatch-quarantine-{os.getpid()}"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"actions": {"enabled": True, "folder": str(folder)}}))
    run("scan", tmp_path / "group", "--cache", cache, "--config", config)
    server = ReviewProcess(tmp_path, "--cache", cache, "--config", config)
    try:
        client = Client(server.url)
        client.get("group/1")
        code, page = client.post("group/1/resolve", {})
        assert code == 409 and "Stopped:" in page and "another filesystem" in page
        assert "Traceback" not in server.stderr.read_text()
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)
    assert all(path.exists() for path in versions.values())
    assert len(run("groups", "--json", "--cache", cache).json()[0]["files"]) == 3
